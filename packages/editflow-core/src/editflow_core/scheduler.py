"""Kappa schedulers.

A scheduler gives kappa(t) with kappa(0) = 0 and kappa(1) = 1: the probability that a column
of the alignment already holds its data value z1 at time t. A column that does not yet hold it
switches at the hazard

    w(t) = kappa'(t) / (1 - kappa(t))            (paper eq. 23)

which weights every term of the loss and, times the model's normalised rates, is the CTMC
intensity when sampling. Over a step [t, t + h] a pending column switches with probability

    P(switch in [t, t + h] | pending at t) = (kappa(t + h) - kappa(t)) / (1 - kappa(t))

(``jump_fraction``), which is 1 when t + h = 1: every pending column has switched by t = 1.

The scheduler is the exact schedule and never clamps: the training loss clamps w(t) itself
(``edit_flow_loss(max_weight=...)``), a training device that must not reach the sampler. The
same scheduler drives training and sampling, so its spec lives in the model config:
``str(make_scheduler(spec))`` is the canonical spec and round-trips.

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


@dataclass(frozen=True)
class Scheduler:
    """kappa(t) = t^n (``kind="poly"``) or 1 - cos(pi t / 2) (``kind="cosine"``).

    Attributes:
        kind: "poly" or "cosine".
        n: the exponent of the polynomial (1 for linear, 3 for cubic).
    """

    kind: str
    n: float = 1.0

    def kappa(self, t: torch.Tensor) -> torch.Tensor:
        """The probability that a column has switched by time t (t: any shape, in [0, 1])."""
        if self.kind == "cosine":
            return 1.0 - torch.cos(0.5 * math.pi * t)
        return t**self.n

    def one_minus_kappa(self, t: torch.Tensor) -> torch.Tensor:
        """1 - kappa(t) without cancellation near t = 1 (elementwise)."""
        if self.kind == "cosine":
            return torch.sin(0.5 * math.pi * (1.0 - t))
        return 0.0 - torch.expm1(self.n * torch.log(t))  # 1 - exp(n log t); +0.0 at t = 1

    def d_kappa(self, t: torch.Tensor) -> torch.Tensor:
        """kappa'(t), elementwise."""
        if self.kind == "cosine":
            return 0.5 * math.pi * torch.sin(0.5 * math.pi * t)
        if self.n == 1:
            return torch.ones_like(t)
        return self.n * t ** (self.n - 1)

    def weight(self, t: torch.Tensor) -> torch.Tensor:
        """w(t) = kappa'(t) / (1 - kappa(t)), elementwise, unclamped (inf at t = 1)."""
        return self.d_kappa(t) / self.one_minus_kappa(t)

    def reverse_weight(self, t: torch.Tensor) -> torch.Tensor:
        """The reverse weight kappa'(t) / kappa(t), elementwise.

        The hazard, backward in time, of a switched column switching back (inf at t = 0 for
        schedules with kappa(0) = 0).
        """
        return self.d_kappa(t) / self.kappa(t)

    def jump_fraction(self, t: torch.Tensor, t_next: torch.Tensor) -> torch.Tensor:
        """The probability (kappa(t_next) - kappa(t)) / (1 - kappa(t)) of a switch by t_next.

        For a column pending at t; 1 at t_next = 1. Elementwise, t <= t_next <= 1, t < 1.
        """
        return 1.0 - self.one_minus_kappa(t_next) / self.one_minus_kappa(t)

    def inverse(self, kappa: torch.Tensor) -> torch.Tensor:
        """The time t with kappa(t) = kappa, elementwise, kappa in [0, 1]."""
        if self.kind == "cosine":
            return torch.acos((1.0 - kappa).clamp(-1.0, 1.0)) * (2.0 / math.pi)
        return kappa ** (1.0 / self.n)

    def __str__(self) -> str:
        if self.kind == "cosine":
            return "cosine"
        n = int(self.n) if float(self.n).is_integer() else self.n
        return {1: "linear", 3: "cubic"}.get(n, f"poly[n:{n}]")


def make_scheduler(spec: str) -> Scheduler:
    """Build a scheduler from its spec: ``linear``, ``cubic``, ``poly[n:N]`` or ``cosine``.

    Raises:
        ValueError: unknown name or key, or a non-positive / non-numeric exponent; the message
            lists the valid specs.
    """
    name, params = parse_spec(spec, "scheduler")
    valid = ", ".join(SCHEDULERS)
    if name in ("linear", "cubic", "cosine"):
        check_keys(spec, "scheduler", params, ())
        if name == "cosine":
            return Scheduler("cosine", 1.0)
        return Scheduler("poly", 1.0 if name == "linear" else 3.0)
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
        return Scheduler("poly", n)
    raise ValueError(f"unknown scheduler {name!r} in spec {spec!r}; valid: {valid}")
