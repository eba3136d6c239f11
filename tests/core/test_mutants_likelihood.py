"""The likelihood bound's pieces, from likelihood.py's and docs/likelihood.md's equations: the
proposal over v = kappa(t), the exact per-column constant, the units, the argument checks and
the bookkeeping of nll_bound (frozen prefixes, progress, reproducibility)."""

from __future__ import annotations

import math

import pytest
import torch
from editflow_core import NLLBound, make_scheduler, make_x0_sampler, nll_bound
from editflow_core.likelihood import LOG_SHARE, clock_constant, sample_times
from editflow_testing.toy_posterior import OracleModel, ToyPosterior

K = 0.999


def proposal_cdf(v: float, K: float, s: float) -> float:
    """CDF of p(v) = (1 - s) / K + s / ((1 - v) L) on [0, K], L = -log(1 - K)."""
    L = -math.log(1 - K)
    return (1 - s) * v / K + s * -math.log(1 - v) / L


def proposal_density(v: float, K: float, s: float) -> float:
    return (1 - s) / K + s / ((1 - v) * -math.log(1 - K))


def test_sample_times_follow_the_mixture_proposal():
    rows, samples = 4000, 10
    v, dens = sample_times(samples, rows, K, torch.Generator().manual_seed(0))
    assert v.shape == dens.shape == (rows, samples)
    assert v.dtype == dens.dtype == torch.float64
    assert v.min() >= 0 and v.max() <= K
    flat = sorted(v.flatten().tolist())
    n = len(flat)
    ks = max(abs(proposal_cdf(x, K, LOG_SHARE) - (i + 0.5) / n) for i, x in enumerate(flat))
    assert ks < 1.6 / math.sqrt(n)  # Kolmogorov-Smirnov, well inside the 1% level
    want = [proposal_density(x, K, LOG_SHARE) for x in v[:50].flatten().tolist()]
    assert dens[:50].flatten().tolist() == pytest.approx(want, rel=1e-12)


def test_sample_times_are_stratified_over_a_sequences_samples():
    """Sample j of S covers u in [j / S, (j + 1) / S): with S = 10 and s = 0.1 the first nine
    are uniform in v over [jK/9, (j+1)K/9) and the last comes from the log part."""
    v, _ = sample_times(10, 300, K, torch.Generator().manual_seed(1))
    for j in range(9):
        col = v[:, j]
        assert col.min() >= j * K / 9 and col.max() < (j + 1) * K / 9
        assert col.max() - col.min() > 0.9 * K / 9  # spread over the whole stratum
    last = v[:, 9]
    assert last.min() >= 0 and last.max() <= K
    # the log part: -log(1 - v) / L is uniform on [0, 1)
    w = (-torch.log1p(-last) / -math.log(1 - K)).double()
    assert w.mean().item() == pytest.approx(0.5, abs=4 * 0.29 / math.sqrt(300))


def test_sample_times_use_the_generator_only():
    a = sample_times(6, 3, K, torch.Generator().manual_seed(5))
    torch.manual_seed(123)
    b = sample_times(6, 3, K, torch.Generator().manual_seed(5))
    c = sample_times(6, 3, K, torch.Generator().manual_seed(6))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_clock_constant_is_b_plus_the_pending_integral():
    """docs/likelihood.md: (b) per column is E[log(1 - v)] - log K with v ~ U[0, K], and the
    pending count's integral is 1 + (1 - K) log(1 - K) / K; together -log K."""
    for k in (0.5, 0.9, 0.999):
        b = (-1 - (1 - k) * math.log(1 - k) / k) - math.log(k)
        pending = 1 + (1 - k) * math.log(1 - k) / k
        # E[log(1 - v)] by the midpoint rule, as a check of the closed form
        m = 20000
        mean_log = sum(math.log(1 - (i + 0.5) / m * k) for i in range(m)) / m
        assert mean_log - math.log(k) == pytest.approx(b, rel=1e-6)
        assert clock_constant(k) == pytest.approx(b + pending, rel=1e-12)


def test_units():
    res = NLLBound(
        nats=torch.tensor([3.0, 5.0], dtype=torch.float64),
        var=torch.tensor([0.25, 0.75], dtype=torch.float64),
        tokens=torch.tensor([2, 6]),
        samples=3,
    )
    assert res.total == 8.0 and res.total_se == 1.0
    assert res.nats_per_token() == pytest.approx((1.0, 1 / 8))
    bpc, se = res.bits_per_char(16)
    assert bpc == pytest.approx(8 / (16 * math.log(2)))
    assert se == pytest.approx(1 / (16 * math.log(2)))


MASK, V = 3, 10


def _oracle():
    language = {(5, 2): 0.5, (6, 5, 2): 0.5}
    post = ToyPosterior(language, 0, MASK, lambda t: t**3)
    return OracleModel(post, V)


def test_nll_bound_bookkeeping():
    model, sched = _oracle(), make_scheduler("cubic")
    x1s = [[1, 5, 2], [1, 6, 5, 2], [1, 5, 2]]
    seen = []
    res = nll_bound(
        model, sched, x1s, make_x0_sampler("empty"), samples=4, batch_size=5,
        generator=torch.Generator().manual_seed(0), progress=lambda d, t: seen.append((d, t)),
    )  # fmt: skip
    assert seen == [(5, 12), (10, 12), (12, 12)]
    assert res.samples == 4 and res.tokens.tolist() == [2, 3, 2]
    assert res.nats.shape == res.var.shape == (3,) and res.nats.dtype == torch.float64
    assert (res.var > 0).all()
    # the bound is about -log p(x1) = log 2 for the oracle of a two-string language
    assert res.total / 3 == pytest.approx(math.log(2), abs=0.25)
    again = nll_bound(
        model, sched, x1s, make_x0_sampler("empty"), samples=4, batch_size=5,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert torch.equal(res.nats, again.nats)
    one = nll_bound(model, sched, x1s[:1], make_x0_sampler("empty"), samples=1,
                    generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert one.samples == 1 and torch.isnan(one.var).all() and torch.isfinite(one.nats).all()


def test_nll_bound_scores_only_the_tokens_after_the_frozen_prefix():
    """A frozen prompt is given, not generated: with the anchor and 5 frozen, [1, 5, 2] scores
    as the one-token text [2] (x1 = (5, 2) holds; the oracle's language has no other text
    starting with 5), so its bound is that of a certain insertion, n * (-log K)."""
    model, sched = _oracle(), make_scheduler("cubic")
    res = nll_bound(model, sched, [[1, 5, 2]], make_x0_sampler("empty"), frozen=[2],
                    samples=16, generator=torch.Generator().manual_seed(3))  # fmt: skip
    assert res.tokens.tolist() == [1]
    # the oracle at x_t = (5,) still expects (6, 5, 2) too, so the bound is not exactly 0; it
    # is far below the unfrozen one, which also pays for choosing between two texts
    free = nll_bound(model, sched, [[1, 5, 2]], make_x0_sampler("empty"), samples=16,
                     generator=torch.Generator().manual_seed(3))  # fmt: skip
    assert res.total < free.total - 0.3


@pytest.mark.parametrize("kappa_max", [0.0, 1.0, -0.5, 1.5])
def test_nll_bound_rejects_kappa_max_outside_the_open_interval(kappa_max):
    with pytest.raises(ValueError) as err:
        nll_bound(_oracle(), make_scheduler("cubic"), [[1, 5, 2]], make_x0_sampler("empty"),
                  kappa_max=kappa_max)  # fmt: skip
    assert str(err.value) == f"kappa_max must be in (0, 1), got {kappa_max}"


def test_nll_bound_rejects_zero_samples():
    with pytest.raises(ValueError) as err:
        nll_bound(_oracle(), make_scheduler("cubic"), [[1, 5, 2]], make_x0_sampler("empty"),
                  samples=0)  # fmt: skip
    assert str(err.value) == "samples must be >= 1, got 0"


class PaddingChecked:
    """WobblyModel that also checks the documented input: x_t right-padded with pad_token_id."""

    time_conditioned = True

    def __init__(self, pad):
        from .test_likelihood import WobblyModel

        self.inner, self.pad, self.calls = WobblyModel(), pad, 0

    def full(self, ids, t):
        return self.inner.full(ids, t)

    def __call__(self, input_ids, attention_mask, t, ins_rows=None, sub_rows=None):
        assert (input_ids[~attention_mask.bool()] == self.pad).all()
        self.calls += 1
        return self.inner(input_ids, attention_mask, t, ins_rows, sub_rows)


def quadrature_bound(model, x1, k_max, points=120):
    """docs/likelihood.md (c') + (d') + n (-log K) for x0 = empty (every column an insertion),
    by Gauss-Legendre over v = kappa(t) (cubic: t = v^(1/3)) and enumeration of the switched
    columns, each switched with probability v / K."""
    import itertools

    import numpy

    n = len(x1)
    x, w = numpy.polynomial.legendre.leggauss(points)
    total = 0.0
    for xv, wv in zip(x.tolist(), w.tolist()):
        v, wv = (xv + 1) / 2 * k_max, wv / 2 * k_max
        t = torch.tensor([v ** (1 / 3)])
        c = d = 0.0
        for switched in itertools.product((False, True), repeat=n):
            p = math.prod((v / k_max) if s else (1 - v / k_max) for s in switched)
            xt = [1] + [b for b, s in zip(x1, switched) if s]
            rates, ins, _ = model.full(torch.tensor([xt]), t)
            allowed = float(rates[0, :, 0].sum() + rates[0, 1:, 1:].sum())
            g, before = 0.0, 0
            for b, s in zip(x1, switched):
                if not s:  # pending insertion of b after x_t position `before`
                    g -= math.log(rates[0, before, 0]) + float(
                        torch.log_softmax(ins[0, before], -1)[b]
                    )
                before += s
            c += p * (allowed - (n - sum(switched))) / (1 - v)
            d += p * g / (1 - v / k_max) / k_max
        total += wv * (c + d)
    return total + n * -math.log(k_max)


@pytest.mark.parametrize("k_max,x1", [(0.6, [5, 2]), (0.95, [5, 2]), (0.9, [5])])
def test_estimator_matches_quadrature_at_other_stopping_times(k_max, x1):
    model = PaddingChecked(pad=4)
    want = quadrature_bound(model, x1, k_max)
    res = nll_bound(
        model, make_scheduler("cubic"), [[1, *x1], [1, 5, 6, 2]] * 30, make_x0_sampler("empty"),
        samples=40, kappa_max=k_max, pad_token_id=4, batch_size=256,
        generator=torch.Generator().manual_seed(2),
    )  # fmt: skip
    got, se = float(res.nats[::2].mean()), math.sqrt(float(res.var[::2].sum())) / 30
    assert abs(got - want) < 4 * se, (got, want, se)
    assert se < 0.06 * abs(want) and model.calls == 10


def test_padding_defaults_to_zero():
    model = PaddingChecked(pad=0)
    res = nll_bound(model, make_scheduler("cubic"), [[1, 5], [1, 6, 5, 2]],
                    make_x0_sampler("empty"), samples=3,
                    generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert model.calls == 1 and torch.isfinite(res.nats).all()


def test_log_coupling_is_float64_for_every_coupling():
    from editflow_core.alignment import align_batch
    from editflow_core.likelihood import log_coupling

    batch = align_batch([[1, MASK]], [[1, 5, 6]], coupling="noise", gaps="left")
    for coupling, gaps in (("noise", "left"), ("optimal", "random"), ("noise", "random")):
        assert log_coupling(batch, coupling, gaps).dtype == torch.float64


class UniformQ:
    """Rates 0.7 at every position; Q uniform over V tokens except token 9, which gets logit
    ``hot`` (5: most of the mass; -inf: never)."""

    time_conditioned = False

    def __init__(self, hot):
        self.hot = hot

    def __call__(self, input_ids, attention_mask, t, ins_rows=None, sub_rows=None):
        from editflow_core import EditFlowOutput

        B, L = input_ids.shape
        logits = torch.zeros(B * L, V)
        logits[:, 9] = self.hot
        rates = torch.full((B, L, 3), 0.7) * attention_mask[..., None]
        return EditFlowOutput(rates, logits[ins_rows], logits[sub_rows])


def test_banned_tokens_are_renormalised_out_of_q():
    """A token the model's Q may never draw (banned) carries no mass: with token 9 banned, a
    model that puts most of Q on 9 scores like one that never proposes it; unbanned, worse."""
    x1s = [[1, 5, 2], [1, 6, 5, 2, 7]]

    def bound(model, banned):
        return nll_bound(model, make_scheduler("cubic"), x1s, make_x0_sampler("masks[length:2]"),
                         samples=6, mask_token_id=MASK, vocab_size=V, banned_token_ids=banned,
                         generator=torch.Generator().manual_seed(4)).nats  # fmt: skip

    never = bound(UniformQ(float("-inf")), ())
    assert torch.equal(bound(UniformQ(5.0), (9,)), never)
    assert torch.equal(bound(UniformQ(5.0), [9, 0]), bound(UniformQ(float("-inf")), (0,)))
    assert (bound(UniformQ(5.0), ()) > never + 1.0).all()


def test_nll_bound_draws_x0_from_its_generator_with_the_given_vocabulary():
    """x0 = uniform tokens (never the excluded ids), variable length: the bound is reproducible
    from the generator alone, whatever torch's global state."""
    model, sched = PaddingChecked(pad=0), make_scheduler("cubic")
    x1s = [[1, 5, 2], [1, 6, 5, 2]]
    runs = []
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)
        runs.append(
            nll_bound(
                model,
                sched,
                x1s,
                make_x0_sampler("uniform[length:1-3]"),
                samples=4,
                vocab_size=V,
                exclude_ids=list(range(1, V)),
                mask_token_id=MASK,
                generator=torch.Generator().manual_seed(9),
            ).nats  # fmt: skip
        )
    assert torch.equal(runs[0], runs[1]) and torch.isfinite(runs[0]).all()


def test_two_samples_are_enough_for_a_standard_error():
    res = nll_bound(_oracle(), make_scheduler("cubic"), [[1, 5, 2]], make_x0_sampler("empty"),
                    samples=2, generator=torch.Generator().manual_seed(1))  # fmt: skip
    assert torch.isfinite(res.var).all() and res.var.item() >= 0


def test_nll_bound_never_feeds_excluded_ids_as_x0():
    seen = set()

    class Spy(PaddingChecked):
        def __call__(self, input_ids, attention_mask, t, ins_rows=None, sub_rows=None):
            seen.update(input_ids[attention_mask.bool()].tolist())
            return super().__call__(input_ids, attention_mask, t, ins_rows, sub_rows)

    nll_bound(Spy(pad=0), make_scheduler("cubic"), [[1, 5, 2], [1, 6, 5, 2]],
              make_x0_sampler("uniform[length:4]"), samples=8, vocab_size=V,
              exclude_ids=[0, 3, 4, 7, 8, 9],
              generator=torch.Generator().manual_seed(2))  # fmt: skip
    assert seen <= {1, 2, 5, 6} and len(seen) == 4
