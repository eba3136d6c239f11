"""The two rules about special tokens, in one place.

- The **anchor**, the token at position 0 of every sequence: BOS, else CLS.
- The tokens **Q never draws** (and random x0 tokens never use): every special token but EOS,
  which a completion must be able to end with.
"""

from __future__ import annotations

from typing import Any


def anchor_token_id(source: Any) -> int | None:
    """BOS, else CLS, of a tokenizer or a config (``None`` when it has neither)."""
    bos = getattr(source, "bos_token_id", None)
    return bos if bos is not None else getattr(source, "cls_token_id", None)


def banned_token_ids(tokenizer: Any, eos_token_id: int | None = None) -> list[int]:
    """Every special token id of ``tokenizer`` but EOS, sorted.

    EOS is ``eos_token_id``, by default the tokenizer's.
    """
    eos = tokenizer.eos_token_id if eos_token_id is None else eos_token_id
    return sorted({i for i in tokenizer.all_special_ids if i != eos})
