"""The likelihood bound: exact on oracles, unbiased against quadrature, never below entropy."""

import itertools
import math

import numpy
import pytest
import torch
from editflow_core import EditFlowOutput, NLLBound, make_scheduler, make_x0_sampler, nll_bound
from editflow_core.alignment import align_batch
from editflow_core.likelihood import log_coupling
from editflow_testing.toy_posterior import OracleModel, ToyPosterior

MASK, V = 3, 10
K = 0.999


def oracle_bound(language, spec, n_masks, samples, seed=0):
    post = ToyPosterior(language, n_masks, MASK, lambda t: t**3)
    x1s = [[1, *x] for x, p in language.items() for _ in range(round(p * 20))]
    res = nll_bound(
        OracleModel(post, V), make_scheduler("cubic"), x1s, make_x0_sampler(spec),
        samples=samples, kappa_max=K, mask_token_id=MASK, vocab_size=V,
        generator=torch.Generator().manual_seed(seed),
    )  # fmt: skip
    return post, x1s, res


@pytest.mark.parametrize(
    "x1,spec,n_masks",
    [((5, 2), "empty", 0), ((5, 5, 5, 2), "empty", 0), ((5, 2), "masks[length:3]", 3),
     ((5, 6, 5, 2), "masks[length:2]", 2), ((5, 5, 2), "masks[length:3]", 3)],
)  # fmt: skip
def test_oracle_of_a_one_string_language_gives_zero(x1, spec, n_masks):
    """H = 0; the bound of the exact-posterior model is H plus n * (-log K) for stopping at T."""
    post, x1s, res = oracle_bound({x1: 1.0}, spec, n_masks, samples=128)
    per_seq, se = res.total / len(x1s), res.total_se / len(x1s)
    columns = max(len(x1), n_masks)  # every column is pending at t = 0
    assert abs(per_seq - columns * -math.log(K)) <= 4 * se + 1e-9
    assert se < 0.08  # and the estimate is precise enough to mean something
    assert abs(per_seq) < 0.02 + 4 * se


@pytest.mark.parametrize("spec,n_masks", [("empty", 0), ("masks[length:3]", 3)])
def test_oracle_of_a_three_string_language_is_at_least_its_entropy(spec, n_masks):
    language = {(5, 6, 2): 0.5, (6, 5, 5, 2): 0.3, (7, 2): 0.2}
    post, x1s, res = oracle_bound(language, spec, n_masks, samples=64)
    per_seq, se = res.total / len(x1s), res.total_se / len(x1s)
    assert per_seq >= post.entropy() - 4 * se
    assert per_seq <= post.entropy() + 0.3  # the oracle's bound is close to the truth


def test_log_coupling_counts_the_gap_placements():
    x1s = [[1, 5, 6, 7, 2], [1, 5, 2], [1, 8]]
    x0s = [[1, MASK, MASK], [1, MASK, MASK, MASK, MASK], [1, MASK]]
    batch = align_batch(x0s, x1s, coupling="noise", gaps="random")
    got = log_coupling(batch, "noise", "random").tolist()
    # (k columns, g gaps): (4, 2), (4, 2), (1, 0)
    assert got == pytest.approx([-math.log(math.comb(4, 2)), -math.log(6), 0.0])
    assert log_coupling(batch, "noise", "left").tolist() == [0.0, 0.0, 0.0]
    assert log_coupling(batch, "optimal", "random").tolist() == [0.0, 0.0, 0.0]


class WobblyModel:
    """Rates and Q that depend on token, position and t: far from any posterior."""

    time_conditioned = True

    def __init__(self):
        g = torch.Generator().manual_seed(3)
        self.tables = torch.randn(3, V, V, generator=g, dtype=torch.float64)

    def full(self, ids, t):
        B, L = ids.shape
        pos = torch.arange(L, dtype=torch.float64)[None]
        base = (ids.double() % 4 + 1) / 3 + 0.2 * torch.cos(pos)  # (B, L)
        tt = t.double()[:, None]
        rates = torch.stack(
            [base * (1 + tt), (2 - base).abs() * 0.5 + tt, base * (1 - 0.5 * tt)], -1
        )
        return rates, self.tables[0][ids] + tt[..., None], self.tables[1][ids] - tt[..., None]

    def __call__(self, input_ids, attention_mask, t, ins_rows=None, sub_rows=None):
        rates, ins, sub = self.full(input_ids, t)
        rates = rates * attention_mask[..., None]
        return EditFlowOutput(
            rates.float(), ins.flatten(0, 1)[ins_rows].float(), sub.flatten(0, 1)[sub_rows].float()
        )


def reference_bound(model, z0, z1, kappa_inv, points=400):
    """(c') + (d') of docs/likelihood.md by Gauss-Legendre quadrature over v = kappa(t) and
    exact enumeration of which columns switched; z0, z1: one alignment after the anchor."""
    cols = [j for j in range(len(z0)) if z0[j] != z1[j]]
    n = len(cols)
    x, w = (torch.tensor(a) for a in numpy.polynomial.legendre.leggauss(points))
    v_all, w_all = (x + 1) / 2 * K, w / 2 * K
    total = 0.0
    for v, wv in zip(v_all.tolist(), w_all.tolist()):
        t = torch.tensor([kappa_inv(v)])
        c = d = 0.0
        for switched in itertools.product((False, True), repeat=n):
            on = dict(zip(cols, switched))
            p = math.prod((v / K) if s else (1 - v / K) for s in switched)
            zt = [z1[j] if on.get(j, True) else z0[j] for j in range(len(z0))]
            xt = [1] + [a for a in zt if a is not None]
            ids = torch.tensor([xt])
            rates, ins, sub = model.full(ids, t)
            allowed = rates[0, :, 0].sum() + rates[0, 1:, 1:].sum()
            pending, g = 0, 0.0
            before = 0
            for a, b in zip(zt, z1):
                if a != b:
                    pending += 1
                    if a is None:  # insert b after x_t position `before`
                        g -= (
                            math.log(rates[0, before, 0]) + torch.log_softmax(ins[0, before], -1)[b]
                        )
                    elif b is None:
                        g -= math.log(rates[0, before + 1, 1])
                    else:
                        g -= (
                            math.log(rates[0, before + 1, 2])
                            + torch.log_softmax(sub[0, before + 1], -1)[b]
                        )
                before += a is not None
            c += p * (float(allowed) - pending) / (1 - v)
            d += p * float(g) / (1 - v / K) / K
        total += wv * (c + d)
    return total + n * -math.log(K)


@pytest.mark.parametrize(
    "x0,x1",
    [([], [5, 6, 5, 2]), ([MASK] * 3, [7, 5, 2]), ([], []), ([MASK] * 2, [MASK, MASK])],
    ids=["empty", "masks", "nothing-to-insert", "nothing-to-substitute"],
)
def test_estimator_matches_quadrature_for_an_arbitrary_model(x0, x1):
    """One fixed alignment (x0 = empty, or as many masks as x1 tokens: all substitutions); with
    x1 = x0 nothing is pending and the bound is the model's integrated outflow alone."""
    model, sched = WobblyModel(), make_scheduler("cubic")
    z0 = [None] * len(x1) if not x0 else list(x0)
    want = reference_bound(model, z0, list(x1), lambda v: v ** (1 / 3))
    spec = "empty" if not x0 else f"masks[length:{len(x0)}]"
    res = nll_bound(
        model, sched, [[1, *x1]] * 50, make_x0_sampler(spec), samples=80, kappa_max=K,
        mask_token_id=MASK, vocab_size=V, generator=torch.Generator().manual_seed(1),
    )  # fmt: skip
    got, se = res.total / 50, res.total_se / 50
    assert abs(got - want) < 4 * se, (got, want, se)
    assert se < 0.05 * abs(want)


def test_units_and_errors():
    res = NLLBound(
        nats=torch.tensor([2.0, 4.0], dtype=torch.float64),
        var=torch.tensor([0.01, 0.03], dtype=torch.float64),
        tokens=torch.tensor([3, 5]),
        samples=4,
    )
    assert res.nats_per_token() == pytest.approx((6 / 8, math.sqrt(0.04) / 8))
    assert res.bits_per_char(12)[0] == pytest.approx(6 / (12 * math.log(2)))
    with pytest.raises(ValueError, match="kappa_max"):
        nll_bound(
            WobblyModel(),
            make_scheduler("cubic"),
            [[1, 5]],
            make_x0_sampler("empty"),
            kappa_max=1.0,
        )
