"""Kappa schedulers (METHOD.md section 6).

A scheduler gives kappa(t) with kappa(0) = 0 and kappa(1) = 1: the probability that a column
of the alignment already holds its data value z1 at time t. Training weights every term with

    w(t) = kappa'(t) / (1 - kappa(t))            (paper eq. 23)

which diverges at t -> 1, so ``weight`` clamps it at ``max_weight`` (the reference: 20).
The same scheduler drives the sampler, where the CTMC intensity is w(t) * lam_hat, so store its
spec in the model config: ``str(make_scheduler(spec))`` is the canonical spec and round-trips.

Names are formulas, not adjectives: ``cubic`` is kappa = t^3 (the paper's), not the reference
implementation's 2t^3 - 3t^2 + 2t.

| spec        | kappa(t)             | kappa'(t)              |
| ----------- | -------------------- | ---------------------- |
| linear      | t                    | 1                      |
| cubic       | t^3                  | 3 t^2                  |
| poly[n:N]   | t^N  (N > 0)         | N t^(N-1)              |
| cosine      | 1 - cos(pi t / 2)    | (pi/2) sin(pi t / 2)   |
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .spec import check_keys, parse_spec

SCHEDULERS = ("linear", "cubic", "poly[n:N]", "cosine")
DEFAULT_MAX_WEIGHT = 20.0


@dataclass(frozen=True)
class Scheduler:
    """kappa(t) = t^n (``kind="poly"``) or 1 - cos(pi t / 2) (``kind="cosine"``).

    Attributes:
        kind: "poly" or "cosine".
        n: the exponent of the polynomial (1 for linear, 3 for cubic).
        max_weight: the clamp on w(t); ``None`` for no clamp.
    """

    kind: str
    n: float = 1.0
    max_weight: float | None = DEFAULT_MAX_WEIGHT

    def kappa(self, t: torch.Tensor) -> torch.Tensor:
        """kappa(t), elementwise; t: any shape, float in [0, 1]."""
        if self.kind == "cosine":
            return 1.0 - torch.cos(0.5 * math.pi * t)
        return t**self.n

    def d_kappa(self, t: torch.Tensor) -> torch.Tensor:
        """kappa'(t), elementwise."""
        if self.kind == "cosine":
            return 0.5 * math.pi * torch.sin(0.5 * math.pi * t)
        if self.n == 1:
            return torch.ones_like(t)
        return self.n * t ** (self.n - 1)

    def weight(self, t: torch.Tensor) -> torch.Tensor:
        """w(t) = kappa'(t) / (1 - kappa(t)), clamped to [0, max_weight]; inf-free at t = 1."""
        w = self.d_kappa(t) / (1.0 - self.kappa(t)).clamp_min(1e-12)
        return w.clamp(max=self.max_weight) if self.max_weight is not None else w

    def __str__(self) -> str:
        if self.kind == "cosine":
            return "cosine"
        n = int(self.n) if float(self.n).is_integer() else self.n
        return {1: "linear", 3: "cubic"}.get(n, f"poly[n:{n}]")


def make_scheduler(spec: str, max_weight: float | None = DEFAULT_MAX_WEIGHT) -> Scheduler:
    """Build a scheduler from its spec: ``linear``, ``cubic``, ``poly[n:N]`` or ``cosine``.

    Args:
        spec: the spec string (see the module table).
        max_weight: clamp on w(t); ``None`` disables it.

    Raises:
        ValueError: unknown name or key, or a non-positive / non-numeric exponent; the message
            lists the valid specs.
    """
    name, params = parse_spec(spec, "scheduler")
    valid = ", ".join(SCHEDULERS)
    if max_weight is not None and not max_weight > 0:
        raise ValueError(f"max_weight must be positive or None, got {max_weight!r}")
    if name in ("linear", "cubic", "cosine"):
        check_keys(spec, "scheduler", params, ())
        if name == "cosine":
            return Scheduler("cosine", 1.0, max_weight)
        return Scheduler("poly", 1.0 if name == "linear" else 3.0, max_weight)
    if name == "poly":
        check_keys(spec, "scheduler", params, ("n",))
        if "n" not in params:
            raise ValueError(
                f"bad scheduler spec {spec!r}: poly needs an exponent, e.g. 'poly[n:2]'"
            )
        try:
            n = float(params["n"])
        except ValueError:
            raise ValueError(
                f"bad scheduler spec {spec!r}: n must be a number, got {params['n']!r}"
            ) from None
        if not (n > 0 and math.isfinite(n)):
            raise ValueError(f"bad scheduler spec {spec!r}: n must be a positive number, got {n}")
        return Scheduler("poly", n, max_weight)
    raise ValueError(f"unknown scheduler {name!r} in spec {spec!r}; valid: {valid}")
