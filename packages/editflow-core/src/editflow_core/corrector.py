"""The predictor-corrector step: forward past the next grid time, then back with reverse rates.

With correction strength c, at step k (t_k -> t_k+1, h = t_k+1 - t_k) a row first leaps forward
to t' = t_k + h (1 + a_k), a_k = c * t_k * (1 - t_k), then leaps backward from t' to t_k+1 with
the model's reverse rates (``EditFlowOutput.reverse_rates``): a switched column is undone between
t' and t_k+1 with probability 1 - kappa(t_k+1) / kappa(t'), so a slot fires with
p = min(1, mu * (1 - kappa(t_k+1) / kappa(t'))), the forward rule's form. The row ends the step
at t_k+1 as without correction, having had a chance to take back edits placed badly; a step whose
t' would reach 1 (the last ones) is not corrected, so the last step still fires every pending
edit. The undo edits' tokens are x0's: the mask token, a uniform draw, and none for x0 = empty
(its reverse edits are deletions only).

Measured on the toy language of ``benchmarks/bench_sampling_quality.py``, it does not pay, not
even with exact rates: the sampler's error there is malformed strings, states the path never
visits, where the exact reverse rates are zero (docs/method/sampling.md, "The corrector").
"""

from __future__ import annotations

import torch

from .model_protocol import DEL
from .scheduler import Scheduler

#: the correction schedule (c: ``SamplingParams.correction``)
SCHEDULE = "a_t = c * t * (1 - t)"


def corrector_grid(
    scheduler: Scheduler, times: list[float], strength: float
) -> tuple[list[float], list[float], list[float]]:
    """Per step: the forward jump fraction to t', the reverse fraction back to t_k+1, and t'.

    Args:
        scheduler: the kappa scheduler of the path.
        times: the step grid t_0 = 0 < ... < t_steps = 1.
        strength: c >= 0; 0 gives the plain grid (reverse fractions 0, t' = t_k+1).

    Returns:
        (forward fractions, reverse fractions, overshoot times), one per step.
    """
    fwd, rev, over = [], [], []
    for k in range(len(times) - 1):
        t, t_next = times[k], times[k + 1]
        a = strength * t * (1.0 - t)
        t_over = t + (t_next - t) * (1.0 + a)
        if a <= 0 or t_over >= 1.0 or k == len(times) - 2:
            t_over = t_next
        tt = torch.tensor([t, t_over, t_next], dtype=torch.float64)
        f = scheduler.jump_fraction(tt[:1], tt[1:2]) if t_over < 1.0 else torch.ones(1)
        fwd.append(float(f))
        k_over, k_next = scheduler.kappa(tt[1:]).tolist()
        rev.append(1.0 - k_next / k_over if t_over > t_next and k_over > 0 else 0.0)
        over.append(t_over)
    return fwd, rev, over


def allowed_reverse(mu: torch.Tensor, allowed: torch.Tensor, x0_kind: str) -> torch.Tensor:
    """Reverse rates where an undo edit may happen: (B, L, 3) (re-insert, delete, sub back).

    ``allowed`` is the forward rate mask; with x0 = empty nothing of x0's can come back, so
    only deletions remain.
    """
    mu = mu * allowed
    if x0_kind == "empty":
        keep = torch.zeros(3, dtype=mu.dtype, device=mu.device)
        keep[DEL] = 1.0
        mu = mu * keep
    return mu


def x0_tokens(
    u: torch.Tensor, x0_kind: str, mask_token_id: int | None, vocab: torch.Tensor
) -> torch.Tensor:
    """x0 tokens for undo edits, one per uniform in ``u`` (any shape).

    The mask token for ``masks``, ``vocab[floor(u * len(vocab))]`` (the allowed ids) for
    ``uniform``.
    """
    if x0_kind == "empty" or (x0_kind != "masks" and len(vocab) == 0):
        return torch.zeros_like(u, dtype=torch.long)  # never used: no x0 token comes back
    if x0_kind == "masks":
        if mask_token_id is None:
            raise ValueError("x0 = masks needs the mask token id for correction")
        return torch.full_like(u, mask_token_id, dtype=torch.long)
    index = (u * len(vocab)).long().clamp(max=len(vocab) - 1)
    return vocab.to(u.device)[index]
