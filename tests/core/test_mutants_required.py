"""Two wrong implementations the core tests must catch, each checked against its own mutant.

(a) A scheduler whose kappa(t) = t whatever its spec (a cubic or cosine schedule that runs as
    linear): the formulas of every scheduler method, the share of columns a training path takes
    from x1, and the times the sampler's forward passes see.
(b) The wrong deletion / substitution split of a fired deletion-or-substitution: the module
    docstring of ``leap.py`` says a deletion with probability lam_del / (lam_del + lam_sub); the
    mutant deletes with probability min(1, lam_del / lam_sub). Checked on ``fire_edits`` and
    through ``BatchSampler``.

Each check is a plain function that raises AssertionError; the tests run it on the library
(it must pass) and on the mutant (it must fail), so the check provably can fail.

References are written from the docstrings' equations (scheduler table, path and leap
docstrings), not from the code under test.
"""

from __future__ import annotations

import math

import pytest
import torch
from editflow_core import (
    BatchSampler,
    SamplingParams,
    Scheduler,
    align_batch,
    make_scheduler,
    sample_path,
)
from editflow_core import leap as leap_module
from editflow_core import sampler as sampler_module
from editflow_core.leap import insertion_counts
from editflow_core.model_protocol import DEL, INS, SUB

from .fakes import ConstantModel

# ------------------------------------------------------------------ (a) the schedule

# kappa and kappa' from the table in scheduler.py's docstring, written with math
TABLE = {
    "linear": (lambda t: t, lambda t: 1.0),
    "cubic": (lambda t: t**3, lambda t: 3 * t**2),
    "poly[n:2]": (lambda t: t**2, lambda t: 2 * t),
    "poly[n:0.5]": (lambda t: t**0.5, lambda t: 0.5 * t**-0.5),
    "cosine": (
        lambda t: 1 - math.cos(math.pi * t / 2),
        lambda t: math.pi / 2 * math.sin(math.pi * t / 2),
    ),
}
NONLINEAR = [s for s in TABLE if s != "linear"]
TIMES = [0.05, 0.2, 0.37, 0.5, 0.64, 0.8, 0.93]


def check_scheduler_formulas(spec: str) -> None:
    """Every method of make_scheduler(spec) against the table, at realistic times."""
    s = make_scheduler(spec)
    kappa, d_kappa = TABLE[spec]
    t = torch.tensor(TIMES, dtype=torch.float64)
    want_k = [kappa(x) for x in TIMES]
    assert s.kappa(t).tolist() == pytest.approx(want_k, rel=1e-9)
    assert s.one_minus_kappa(t).tolist() == pytest.approx([1 - k for k in want_k], rel=1e-9)
    assert s.d_kappa(t).tolist() == pytest.approx([d_kappa(x) for x in TIMES], rel=1e-9)
    want_w = [d_kappa(x) / (1 - kappa(x)) for x in TIMES]
    assert s.weight(t).tolist() == pytest.approx(want_w, rel=1e-9)
    nxt = [min(1.0, x + 0.1) for x in TIMES]
    want_f = [(kappa(b) - kappa(a)) / (1 - kappa(a)) for a, b in zip(TIMES, nxt)]
    got_f = s.jump_fraction(t, torch.tensor(nxt, dtype=torch.float64)).tolist()
    assert got_f == pytest.approx(want_f, rel=1e-9)
    assert s.inverse(torch.tensor(want_k, dtype=torch.float64)).tolist() == pytest.approx(TIMES)


def check_path_takes_kappa_of_the_columns(spec: str) -> None:
    """path.py: each column holds z1's value with probability kappa(t). 4000 substitution
    columns at t = 0.6: the remaining edits are 1 - kappa(0.6) of them (within 5 sigma)."""
    n, t = 4000, 0.6
    batch = align_batch([[1] + [7] * n], [[1] + [3] * n], coupling="noise")
    path = sample_path(
        batch, make_scheduler(spec), torch.tensor([t]), generator=torch.Generator().manual_seed(5)
    )
    p = TABLE[spec][0](t)
    remaining = len(path.edit_op) / n
    assert abs(remaining - (1 - p)) < 5 * math.sqrt(p * (1 - p) / n)


def check_sampler_times(spec: str) -> None:
    """sampler.py: on the default grid the k-th forward pass sees t_k with kappa(t_k) = k/steps."""
    seen: list[float] = []

    def spy(input_ids, attention_mask, t, ins_rows=None, sub_rows=None):
        seen.append(float(t[0]))
        return ConstantModel(vocab=5)(input_ids, attention_mask, t)

    spy.time_conditioned = True
    BatchSampler(spy, make_scheduler(spec)).generate([[1]], params=SamplingParams(steps=5, seed=0))
    kappa = TABLE[spec][0]
    assert [kappa(t) for t in seen] == pytest.approx([k / 5 for k in range(5)], abs=1e-6)


CHECKS = [check_scheduler_formulas, check_path_takes_kappa_of_the_columns, check_sampler_times]


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("spec", list(TABLE))
def test_schedules_follow_their_formulas(check, spec):
    check(spec)


def _linear_everywhere(monkeypatch, whole: bool) -> None:
    """Mutant (a): kappa(t) = t for every spec; ``whole``: every method consistent with it."""
    monkeypatch.setattr(Scheduler, "kappa", lambda self, t: t)
    if whole:
        monkeypatch.setattr(Scheduler, "one_minus_kappa", lambda self, t: 1.0 - t)
        monkeypatch.setattr(Scheduler, "d_kappa", lambda self, t: torch.ones_like(t))
        monkeypatch.setattr(Scheduler, "inverse", lambda self, k: k)


# with kappa alone replaced, the sampler is unchanged: it reads one_minus_kappa and inverse
MUTANT_A_CASES = [
    (spec, check, whole)
    for spec in NONLINEAR
    for check in CHECKS
    for whole in (False, True)
    if whole or check is not check_sampler_times
]


@pytest.mark.parametrize("spec,check,whole", MUTANT_A_CASES)
def test_a_scheduler_that_is_linear_for_every_spec_is_caught(monkeypatch, spec, check, whole):
    _linear_everywhere(monkeypatch, whole)
    with pytest.raises(AssertionError):
        check(spec)


# ------------------------------------------------------------------ (b) the del / sub split


def fire_edits_wrong_split(lam, frac, u, room):
    """Mutant (b) of ``leap.fire_edits``: a fired deletion-or-substitution is a deletion with
    probability min(1, lam_del / lam_sub) instead of lam_del / (lam_del + lam_sub)."""
    ins = insertion_counts(lam[..., INS], frac, u[0])
    ds_rate = lam[..., DEL] + lam[..., SUB]
    ds = u[1] < (ds_rate * frac).clamp(max=1.0)
    dele = ds & (u[2] * lam[..., SUB] < lam[..., DEL])
    sub = ds & ~dele
    allowed = (room + dele.sum(1))[:, None] - (ins.cumsum(1) - ins)
    kept = torch.minimum(ins, allowed.clamp(min=0))
    return kept, dele, sub, (kept < ins).any(1)


# realistic: a slot holds at most one pending deletion-or-substitution, lam_del + lam_sub <= 1
SPLITS = [(0.3, 0.6), (0.6, 0.3), (0.05, 0.9), (0.45, 0.45)]


def check_fire_split(fire, lam_del: float, lam_sub: float) -> None:
    """Among fired deletions-or-substitutions, the share of deletions is lam_del / (lam_del +
    lam_sub), and a slot fires with probability min(1, (lam_del + lam_sub) f)."""
    B, L, f = 50, 400, 0.7
    g = torch.Generator().manual_seed(11)
    lam = torch.zeros(B, L, 3)
    lam[..., DEL], lam[..., SUB] = lam_del, lam_sub
    u = torch.rand(3, B, L, generator=g)
    _, dele, sub, _ = fire(lam, torch.full((B, 1), f), u, torch.full((B,), 10**6))
    fired = int(dele.sum() + sub.sum())
    p_fire = min(1.0, (lam_del + lam_sub) * f)
    assert abs(fired / (B * L) - p_fire) < 5 * math.sqrt(p_fire * (1 - p_fire) / (B * L))
    share, want = float(dele.sum()) / fired, lam_del / (lam_del + lam_sub)
    assert abs(share - want) < 5 * math.sqrt(want * (1 - want) / fired)


def check_sampler_split(lam_del: float, lam_sub: float) -> None:
    """End to end: one step to t = 1 of 120 sequences of 100 masks under constant rates; the
    deletions among the applied deletions and substitutions are lam_del / (lam_del + lam_sub)."""
    n, m = 120, 100
    model = ConstantModel(vocab=12, dele=lam_del, sub=lam_sub)
    res = BatchSampler(model, make_scheduler("cubic")).generate(
        [[1]] * n, [[11] * m] * n, [SamplingParams(steps=1, seed=i) for i in range(n)]
    )
    n_del, n_sub = sum(r.n_del for r in res), sum(r.n_sub for r in res)
    p_fire = lam_del + lam_sub  # f = 1 on the last step
    assert abs((n_del + n_sub) / (n * m) - p_fire) < 5 * math.sqrt(p_fire * (1 - p_fire) / (n * m))
    share, want = n_del / (n_del + n_sub), lam_del / (lam_del + lam_sub)
    assert abs(share - want) < 5 * math.sqrt(want * (1 - want) / (n_del + n_sub))
    assert all(len(r.tokens) == 1 + m - r.n_del for r in res)


@pytest.mark.parametrize("lam_del,lam_sub", SPLITS)
def test_deletion_share_of_fired_edits(lam_del, lam_sub):
    check_fire_split(leap_module.fire_edits, lam_del, lam_sub)
    check_sampler_split(lam_del, lam_sub)


# (0.05, 0.9) is left out: there the two shares, 0.053 and 0.056, are too close to tell apart
@pytest.mark.parametrize("lam_del,lam_sub", [(0.3, 0.6), (0.6, 0.3), (0.45, 0.45)])
def test_the_wrong_deletion_share_is_caught(monkeypatch, lam_del, lam_sub):
    with pytest.raises(AssertionError):
        check_fire_split(fire_edits_wrong_split, lam_del, lam_sub)
    monkeypatch.setattr(sampler_module, "fire_edits", fire_edits_wrong_split)
    with pytest.raises(AssertionError):
        check_sampler_split(lam_del, lam_sub)
