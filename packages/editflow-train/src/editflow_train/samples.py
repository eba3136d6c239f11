"""End-of-run samples through the core sampler, and how many of their words are real.

``real_word_fraction`` is the share of generated words (``[a-z]+('[a-z]+)?``, lower-cased) that
occur in the training corpus: a cheap, tokenizer-independent check that a small model has
learned words rather than byte soup (a word-level tokenizer would make it 1 by construction,
which is why the quickstart uses BPE).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import torch
from editflow_core import SamplingParams
from editflow_models import generation_setup
from transformers import PreTrainedTokenizerBase

WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def words(text: str) -> list[str]:
    """The lower-cased words of ``text``."""
    return WORD.findall(text.lower())


def corpus_vocabulary(texts: Iterable[str]) -> set[str]:
    """Every word of the corpus."""
    vocab: set[str] = set()
    for text in texts:
        vocab.update(words(text))
    return vocab


def real_word_fraction(samples: Sequence[str], vocabulary: set[str]) -> float:
    """Share of the samples' words found in ``vocabulary`` (0 when they hold no word)."""
    found = [w in vocabulary for text in samples for w in words(text)]
    return sum(found) / len(found) if found else 0.0


@torch.no_grad()
def generate(
    model,
    tokenizer: PreTrainedTokenizerBase,
    prefixes: Sequence[Sequence[int]],
    *,
    steps: int,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int = 0,
    past_eos: bool = False,
) -> list[str]:
    """Sample one completion per prefix (x0 from the model config's sampler); decoded text.

    ``past_eos``: decode the whole generated sequence, each EOS as a blank line (pretraining
    text is documents separated by EOS), instead of cutting the completion at the first EOS.
    """
    was_training = model.training
    setup = generation_setup(model.eval(), tokenizer)
    gen = torch.Generator().manual_seed(seed)
    x0 = [setup.draw_x0(gen) for _ in prefixes]
    sampler = setup.sampler()
    params = [
        SamplingParams(
            steps=steps,
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max(max_new_tokens, len(x0[i])),
            seed=seed + i,
        )
        for i in range(len(prefixes))
    ]
    results = sampler.generate(prefixes, x0, params)
    model.train(was_training)
    if not past_eos:
        return [tokenizer.decode(r.completion, skip_special_tokens=True) for r in results]
    eos = setup.eos_token_id
    texts = []
    for prefix, r in zip(prefixes, results):
        docs, doc = [], []
        for token in r.tokens[len(prefix) :]:
            if token == eos:
                docs.append(doc)
                doc = []
            else:
                doc.append(token)
        docs.append(doc)
        texts.append(
            "\n\n".join(tokenizer.decode(d, skip_special_tokens=True).strip() for d in docs)
        )
    return texts
