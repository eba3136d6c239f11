"""A small byte-level BPE tokenizer built locally from the training text (no hub).

Design decisions:
- Byte-level BPE: every string round-trips (newlines and spaces included), so generated text
  prints as written; the vocabulary is small (default 2,048) so a CPU model learns it fast.
- Special tokens first, in a fixed order: ``<pad>`` = 0, ``<bos>`` = 1 (the anchor),
  ``<eos>`` = 2, ``<mask>`` = 3 (for ``masks[...]`` x0), ``<unk>`` = 4.
- The result is a ``PreTrainedTokenizerFast`` cached under the run directory and saved beside
  every checkpoint, so ``AutoTokenizer.from_pretrained(checkpoint)`` works.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

SPECIAL_TOKENS = {
    "pad_token": "<pad>",
    "bos_token": "<bos>",
    "eos_token": "<eos>",
    "mask_token": "<mask>",
    "unk_token": "<unk>",
}


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer of ``vocab_size`` entries on ``texts``."""
    if vocab_size <= len(SPECIAL_TOKENS) + 256:
        raise ValueError(
            f"tokenizer_vocab_size must exceed 261 (bytes + specials), got {vocab_size}"
        )
    tok = Tokenizer(models.BPE(unk_token=SPECIAL_TOKENS["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL_TOKENS)


def local_tokenizer(
    cache_dir: Path, texts: Iterable[str], vocab_size: int
) -> PreTrainedTokenizerBase:
    """Load the tokenizer cached in ``cache_dir``, or train one on ``texts`` and cache it."""
    if (cache_dir / "tokenizer.json").is_file():
        return AutoTokenizer.from_pretrained(cache_dir)
    tokenizer = train_bpe_tokenizer(texts, vocab_size)
    tmp = cache_dir.with_name(cache_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(cache_dir, ignore_errors=True)
    tokenizer.save_pretrained(tmp)
    tmp.rename(cache_dir)  # atomic: a half-written cache is never picked up
    return tokenizer
