"""What goes into and comes out of the sampler: per-sequence settings, results, traces.

Plain dataclasses, so servers and CLIs can build and read them without the sampler itself.
Positions in ``EditOp`` are those of the sequence before the step (frozen prefix included).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass
class SamplingParams:
    """Per-sequence settings.

    Attributes:
        steps: number of tau-leaping steps (h = 1 / steps).
        temperature: for Q; 0 means greedy.
        top_k: keep the k most likely tokens (0 = all).
        top_p: nucleus mass to keep (1 = all).
        max_new_tokens: cap on the number of tokens after the frozen prefix.
        seed: seed of this sequence's generator (``None``: drawn from torch's global RNG).
        trace: record the per-step edit operations.
        idle_stop_steps: finish early after this many consecutive steps without an edit, once
            t >= ``idle_stop_after`` (0 disables).
        idle_stop_after: see ``idle_stop_steps``.
        guidance_scale: classifier-free guidance g >= 0 for a sequence with a prompt
            (``editflow_core.guidance``); 0 (default) is the plain sampler.
        correction: corrector strength c >= 0 (``editflow_core.corrector``: each step goes
            forward to t + h (1 + a_t), a_t = c t (1 - t), then back with reverse rates; needs
            a model with reverse rates; one more forward per corrected step); 0: off.
    """

    steps: int = 64
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    max_new_tokens: int = 256
    seed: int | None = None
    trace: bool = False
    idle_stop_steps: int = 0
    idle_stop_after: float = 0.9
    guidance_scale: float = 0.0
    correction: float = 0.0

    def validate(self) -> None:
        """Raise ValueError naming the first invalid field."""
        checks = [
            ("steps", self.steps >= 1, "an integer >= 1"),
            (
                "temperature",
                math.isfinite(self.temperature) and self.temperature >= 0,
                "a number >= 0",
            ),
            ("top_k", self.top_k >= 0, "an integer >= 0"),
            ("top_p", 0 < self.top_p <= 1, "in (0, 1]"),
            ("max_new_tokens", self.max_new_tokens >= 1, "an integer >= 1"),
            ("idle_stop_steps", self.idle_stop_steps >= 0, "an integer >= 0"),
            ("idle_stop_after", 0 <= self.idle_stop_after <= 1, "in [0, 1]"),
            (
                "guidance_scale",
                math.isfinite(self.guidance_scale) and self.guidance_scale >= 0,
                "a number >= 0",
            ),
            (
                "correction",
                math.isfinite(self.correction) and self.correction >= 0,
                "a number >= 0",
            ),
        ]
        for name, ok, what in checks:
            if not ok:
                raise ValueError(
                    f"sampling parameter {name} must be {what}, got {getattr(self, name)!r}"
                )


@dataclass
class EditOp:
    """One applied edit, in the coordinates of the sequence before the step.

    ``op`` is "ins" (``token`` inserted after ``pos``), "del" (``old`` at ``pos`` removed) or
    "sub" (``old`` at ``pos`` replaced by ``token``).
    """

    op: str
    pos: int
    token: int | None
    old: int | None


@dataclass
class TraceStep:
    """The edits of one step of one sequence, at time ``t`` (before the step)."""

    step: int
    t: float
    edits: list[EditOp]


@dataclass
class GenerationResult:
    """A finished sequence.

    Attributes:
        key: the caller's key given to ``add``.
        tokens: the final sequence, frozen prefix included (before EOS truncation).
        completion: the tokens after the frozen prefix, cut at the first EOS.
        finish_reason: "stop" (ran its steps, or EOS) or "length" (the cap was hit).
        steps: steps taken. forward_passes: forwards computed for it (reused ones excluded).
        n_ins, n_del, n_sub: edits applied.
        trace: per-step edits when ``params.trace``.
        x0_kept: x0 tokens still there, unchanged (of a draft: the accepted ones).
    """

    key: Any
    tokens: list[int]
    completion: list[int]
    finish_reason: str
    steps: int
    forward_passes: int
    n_ins: int
    n_del: int
    n_sub: int
    trace: list[TraceStep] | None = None
    x0_kept: int = 0


@dataclass
class SequenceProgress:
    """A running sequence between steps (see ``BatchSampler.progress``)."""

    tokens: list[int]
    step: int
    t: float
    n_ins: int
    n_del: int
    n_sub: int
    trace: list[TraceStep] | None
