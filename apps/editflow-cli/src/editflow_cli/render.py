"""Showing edits: a plain-text trace line per step, and a rich rendering of one step's edits.

Colours in the live view: inserted tokens green, substituted tokens yellow (the old token shown
struck through before them), deleted tokens red and struck through.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from editflow_core import EditOp, TraceStep
from rich.text import Text

Decode = Callable[[Sequence[int]], str]


def describe_step(step: TraceStep, decode: Decode) -> str:
    """One trace line: ``step 3 t=0.094: +'the'@4 -'x'@2 ~'a'>'b'@5``."""
    parts = []
    for e in step.edits:
        if e.op == "ins":
            parts.append(f"+{decode([e.token])!r}@{e.pos}")
        elif e.op == "del":
            parts.append(f"-{decode([e.old])!r}@{e.pos}")
        else:
            parts.append(f"~{decode([e.old])!r}>{decode([e.token])!r}@{e.pos}")
    return f"step {step.step} t={step.t:.3f}: " + (" ".join(parts) if parts else "(no edit)")


def render_edits(
    before: Sequence[int], edits: Sequence[EditOp], frozen: int, decode: Decode
) -> Text:
    """The text after one step, with that step's edits marked.

    Args:
        before: the whole sequence before the step (prefix included).
        edits: the step's edits, in ``before`` coordinates.
        frozen: prefix length; the prefix is not shown.
        decode: token ids -> text.
    """
    by_pos: dict[int, list[EditOp]] = {}
    for e in edits:
        by_pos.setdefault(e.pos, []).append(e)
    out = Text()
    for i, tok in enumerate(before):
        ops = by_pos.get(i, [])
        shown = i >= frozen
        kinds = {e.op: e for e in ops}
        if shown and "del" in kinds:
            out.append(decode([tok]), style="red strike")
        elif shown and "sub" in kinds:
            out.append(decode([tok]), style="dim strike")
            out.append(decode([kinds["sub"].token]), style="bold yellow")
        elif shown:
            out.append(decode([tok]))
        for e in ops:  # several insertions after one position come in text order
            if e.op == "ins":
                out.append(decode([e.token]), style="bold green")
    return out
