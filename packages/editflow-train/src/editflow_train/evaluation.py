"""Held-out likelihood bound: nats per token and bits per character.

``heldout_bound`` scores tokenized records (``{"input_ids": x1, "frozen": f}``, as the training
datasets hold them) with ``GenerationSetup.nll_bound`` (an upper bound on -log p, see
``editflow_core.likelihood``) and reports it per scored token and per character of the scored
text, with Monte Carlo standard errors. Bits per character compare with character-level models
on the same text; they pay for every chunk's end-of-text token.

Design decisions:
- A fixed seed and the first ``max_sequences`` records: two evaluations of the same checkpoint
  give the same number, and two runs are compared on the same text.
- The trainer computes it at each evaluation (``nll_bound_samples`` > 0) and after training on
  the test split, unless the parameters are sharded (ZeRO-3 / FSDP), where it is left to
  ``editflow eval`` on ``checkpoint-final``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def heldout_bound(
    setup: Any,
    records: Iterable[dict],
    *,
    samples: int = 4,
    max_sequences: int | None = 256,
    seed: int = 0,
    batch_size: int = 64,
    progress=None,
) -> dict[str, float]:
    """The bound on held-out records.

    Args:
        setup: an ``editflow_models.generation.GenerationSetup`` (model, tokenizer, x0, ...).
        records: dicts with ``input_ids`` (x1, anchor first) and optional ``frozen`` (default 1).
        samples: Monte Carlo samples per sequence (>= 2 for a standard error).
        max_sequences: score at most this many records (the first ones); ``None``: all.
        seed: seeds the coupling and time draws, so two evaluations agree.
        batch_size: rows per forward pass.
        progress: optional callable(done_rows, total_rows).

    Returns:
        ``nll_bound`` (nats per token), ``nll_bound_se``, ``bpc`` (bits per character),
        ``bpc_se``, and the counts ``sequences``, ``tokens``, ``chars``.

    Raises:
        ValueError: no record to score.
    """
    x1s, frozen = [], []
    for record in records:
        if max_sequences is not None and len(x1s) >= max_sequences:
            break
        x1s.append(list(record["input_ids"]))
        frozen.append(int(record.get("frozen", 1)))
    if not x1s:
        raise ValueError("no held-out sequence to score")
    result = setup.nll_bound(
        x1s, frozen, samples=samples, seed=seed, batch_size=batch_size, progress=progress
    )
    chars = sum(setup.text_chars(x1, f) for x1, f in zip(x1s, frozen))
    nats, nats_se = result.nats_per_token()
    bpc, bpc_se = result.bits_per_char(max(chars, 1))
    return {
        "nll_bound": nats,
        "nll_bound_se": nats_se,
        "bpc": bpc,
        "bpc_se": bpc_se,
        "sequences": len(x1s),
        "tokens": int(result.tokens.sum()),
        "chars": chars,
    }


def format_bound(result: dict[str, float]) -> str:
    """One line: 'held-out bound: 2.91 +- 0.01 bits/char (2.017 nats/token; 180 sequences)'."""
    return (
        f"held-out likelihood bound: {result['bpc']:.3f} +- {result['bpc_se']:.3f} bits/char "
        f"({result['nll_bound']:.3f} +- {result['nll_bound_se']:.3f} nats/token; "
        f"{result['sequences']} sequences, {result['tokens']} tokens, {result['chars']} chars)"
    )
