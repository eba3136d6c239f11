"""A tiny random Edit Flow model and tokenizer, made locally (no downloads).

Used by the test suite and by ``benchmarks/bench_serve.py`` when no trained checkpoint exists,
so the server can be exercised end to end anywhere. The tokenizer is a byte-level BPE trained
on a few sentences (decoding is exact), with <bos> (the anchor), <eos>, <pad>, <mask>, <unk>.
"""

from __future__ import annotations

from pathlib import Path

import torch

_CORPUS = [
    "Edit Flows write text by inserting, deleting and substituting tokens.",
    "The quick brown fox jumps over the lazy dog.",
    "A continuous-time Markov chain is sampled by tau-leaping.",
    "<|system|>\n<|user|>\n<|assistant|>\nHello! How are you today?",
] * 4


def make_tiny_tokenizer():
    """A byte-level BPE ``PreTrainedTokenizerFast`` of a few hundred tokens."""
    from editflow_models import train_bpe_tokenizer

    return train_bpe_tokenizer(_CORPUS, 320)


def save_tiny_model(
    path: str | Path, seed: int = 0, hidden_size: int = 32, reverse_rates: bool = False
) -> Path:
    """Build a random 2-layer ModernBERT Edit Flow model + tokenizer and save both at ``path``.

    ``reverse_rates``: the rate head also predicts reverse rates (for the corrector).
    """
    from editflow_models import build_model_from_scratch

    path = Path(path)
    tokenizer = make_tiny_tokenizer()
    torch.manual_seed(seed)
    model = build_model_from_scratch(
        "modernbert",
        vocab_size=len(tokenizer),
        anchor_token_id=tokenizer.bos_token_id,
        hidden_size=hidden_size,
        num_layers=2,
        num_heads=4,
        max_position_embeddings=512,
        mask_token_id=tokenizer.mask_token_id,
        pad_token_id=tokenizer.pad_token_id,
        x0="masks[length:8]",
        reverse_rates=reverse_rates,
    )
    with torch.no_grad():  # make edits fire often enough to be seen in a few steps
        model.rate_head.bias.fill_(1.0)
    model.eval().save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
