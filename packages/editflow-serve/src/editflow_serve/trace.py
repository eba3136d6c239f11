"""The ``editflow_trace`` side channel as JSON: the x0 snapshot, then each step's edits.

Entry ``{"step": -1, "t": 0.0, "tokens", "texts"}`` is a choice's x0 (the state at t = 0);
every later entry ``{"step", "t", "edits": [{op, pos, token, text, old, old_text}]}`` lists one
step's edits. ``pos`` indexes the generated tokens before that step (0 is the first token after
the prompt): ``ins`` inserts ``token`` after ``pos`` (-1: at the start), ``del`` removes ``pos``,
``sub`` replaces it. Applying a step's edits right to left reproduces the sequence. Steps
without edits are left out; ``t`` is rounded to 6 decimals.
"""

from __future__ import annotations

from typing import Any, Protocol

from editflow_core import TraceStep


class _Decoder(Protocol):
    def decode(self, ids: list[int]) -> str: ...


class TraceJSON:
    """Trace entries of one tokenizer's tokens (each token's text decoded once, then cached)."""

    def __init__(self, tokenizer: _Decoder) -> None:
        self.tokenizer = tokenizer
        self._texts: dict[int, str] = {}

    def snapshot(self, x0: list[int]) -> dict[str, Any]:
        """The first entry of a choice: its x0 tokens."""
        return {"step": -1, "t": 0.0, "tokens": x0, "texts": [self.text(t) for t in x0]}

    def steps(self, steps: list[TraceStep], frozen: int) -> list[dict[str, Any]]:
        """Steps with edits, positions made relative to the ``frozen`` prompt tokens."""
        out = []
        for s in steps:
            if not s.edits:
                continue
            edits = [
                {
                    "op": e.op,
                    "pos": e.pos - frozen,
                    "token": e.token,
                    "text": self.text(e.token),
                    "old": e.old,
                    "old_text": self.text(e.old),
                }
                for e in s.edits
            ]
            out.append({"step": s.step, "t": round(s.t, 6), "edits": edits})
        return out

    def text(self, token: int | None) -> str | None:
        """A token's decoded text (None for no token)."""
        if token is None:
            return None
        text = self._texts.get(token)
        if text is None:
            text = self._texts[token] = self.tokenizer.decode([token])
        return text
