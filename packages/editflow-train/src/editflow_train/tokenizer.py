"""The quickstart's tokenizer: a byte-level BPE built locally from the training text (no hub).

It is built with ``editflow_models.train_bpe_tokenizer`` and cached under the run directory.

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

from editflow_models import train_bpe_tokenizer
from transformers import AutoTokenizer, PreTrainedTokenizerBase


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
