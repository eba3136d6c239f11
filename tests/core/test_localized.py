"""Localized paths: the parallel sampler against a direct simulation of the spreading process.

Statistical tolerance. Each check compares a probability estimated from the sampler (N draws)
with the same one from the simulation (N independent draws). Under the null hypothesis (same
law, probability p) their difference has standard deviation sigma = sqrt(2 p (1 - p) / N); we
estimate p by the pooled frequency (floored at 1 / N so a rare event is not judged with a zero
tolerance) and fail beyond Z = 5 sigma. The normal tail beyond 5 sigma is 5.7e-7 per
comparison, so with the few hundred comparisons below (Bonferroni) a correct sampler fails
with probability < 1e-3; the seeds are fixed, so the outcome is deterministic anyway. The same
statistic is checked to have power: a sampler with a spreading rate 1.5x too high, and the plain
path, both exceed it by far (``test_the_comparison_has_power``).
"""

from __future__ import annotations

import heapq
import math

import pytest
import torch
from editflow_core import (
    BLANK,
    AlignedBatch,
    align_batch,
    make_scheduler,
    sample_path,
)
from editflow_core.localized import (
    clamped_edit_weight,
    edit_hazard_factors,
    first_passage_times,
    hazard_factor,
    localized_sites,
    sample_ignition_times,
    sample_switch_times,
    switched_neighbours,
)
from editflow_testing.reference import apply_edits

N = 40_000  # draws per law
Z = 5.0
SITES = 10
FROZEN = 2  # anchor + a one-token prompt: not sites
PAD = 3  # padding columns after the sites


# ---------------------------------------------------------------------------------------------
# the direct simulation, written from the definition of the process (not from the sampler)


def kappa_inverse(name: str, u: torch.Tensor) -> torch.Tensor:
    """kappa^-1, written out: s = kappa^-1(u) has P(s <= t) = kappa(t) for u ~ U(0, 1)."""
    if name == "linear":
        return u
    if name == "cubic":
        return u ** (1.0 / 3.0)
    raise ValueError(name)


def kappa_of(name: str, t: float) -> float:
    return {"linear": t, "cubic": t**3}[name]


def simulate_spread(n: int, sched: str, lam_prop: float, draws: int, seed: int) -> torch.Tensor:
    """Switch times (draws, n) of n sites on a line, by event-driven (Gillespie) simulation.

    Each site ignites at its own time s ~ kappa (the plain path's switch law); a switched site
    switches each unswitched neighbour at rate lam_prop. Between events the spreading part is a
    constant total rate lam_prop * (number of switched -> unswitched neighbour pairs), so the
    next spreading event comes after Exp(that rate) and picks such a pair uniformly; it happens
    unless an unswitched site's ignition time comes first. All draws advance in lockstep, one
    event (one switch) per iteration.
    """
    g = torch.Generator().manual_seed(seed)
    s = kappa_inverse(sched, torch.rand(draws, n, generator=g, dtype=torch.float64))
    on = torch.zeros(draws, n, dtype=torch.bool)
    when = torch.full((draws, n), math.inf, dtype=torch.float64)
    now = torch.zeros(draws, dtype=torch.float64)
    rows = torch.arange(draws)
    for _ in range(n):
        pairs = torch.zeros(draws, n, dtype=torch.float64)  # switched neighbours of each site
        pairs[:, 1:] += on[:, :-1]
        pairs[:, :-1] += on[:, 1:]
        pairs[on] = 0.0
        total = lam_prop * pairs.sum(1)
        wait = torch.empty(draws, dtype=torch.float64).exponential_(1.0, generator=g) / total
        t_spread = now + wait  # inf where nothing can spread
        t_ignite, j_ignite = torch.where(on, math.inf, s).min(1)
        nothing = (pairs.sum(1) == 0)[:, None].double()  # multinomial needs a positive weight
        j_spread = torch.multinomial(pairs + nothing, 1, generator=g)[:, 0]
        spread = t_spread < t_ignite
        j = torch.where(spread, j_spread, j_ignite)
        now = torch.where(spread, t_spread, t_ignite)
        on[rows, j] = True
        when[rows, j] = now
    return when


def sampler_times(sched: str, lam_prop: float, draws: int, seed: int) -> torch.Tensor:
    """The library's switch times on the sites of a batch with a frozen prefix and padding."""
    z0 = torch.full((draws, FROZEN + SITES + PAD), BLANK)
    z0[:, :FROZEN] = 7
    z1 = z0.clone()
    z1[:, FROZEN : FROZEN + SITES] = 5  # every site an insertion
    batch = AlignedBatch(z0, z1, torch.full((draws,), FROZEN))
    site = localized_sites(batch)
    assert site.sum(1).eq(SITES).all() and site[:, FROZEN : FROZEN + SITES].all()
    g = torch.Generator().manual_seed(seed)
    T = sample_switch_times(site, make_scheduler(sched), lam_prop, g)
    assert torch.isinf(T[~site]).all()
    return T[:, FROZEN : FROZEN + SITES]


def z_scores(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """|mean(a) - mean(b)| / sigma over the first axis, a, b (N, ...) bool (module docstring)."""
    pa, pb = a.double().mean(0), b.double().mean(0)
    p = ((pa + pb) / 2).clamp(1.0 / N, 1.0 - 1.0 / N)
    return (pa - pb).abs() / torch.sqrt(2 * p * (1 - p) / N)


def compare(T_a: torch.Tensor, T_b: torch.Tensor, times=(0.3, 0.5, 0.7)) -> float:
    """The largest z-score over per-site marginals P(T_j <= t) and pairwise joints
    P(T_i <= t, T_j <= t) for neighbours, next-but-one and distant pairs, at several t."""
    worst = 0.0
    pairs = [(0, 1), (4, 5), (3, 5), (2, 8), (SITES - 2, SITES - 1)]
    for t in times:
        a, b = T_a <= t, T_b <= t
        worst = max(worst, float(z_scores(a, b).max()))
        for i, j in pairs:
            worst = max(worst, float(z_scores(a[:, i] & a[:, j], b[:, i] & b[:, j])))
    return worst


# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sched", ["cubic", "linear"])
@pytest.mark.parametrize("lam_prop", [0.5, 2.0, 8.0])
def test_marginals_and_joints_match_the_simulation(sched, lam_prop):
    sim = simulate_spread(SITES, sched, lam_prop, N, seed=1)
    got = sampler_times(sched, lam_prop, N, seed=2)
    assert compare(got, sim) < Z
    # the first-switch law of a whole row as well (sensitive to the spreading's correlations)
    for t in (0.3, 0.6):
        count_a = (got <= t).sum(1)
        count_b = (sim <= t).sum(1)
        for k in (0, 3, 6, SITES):
            assert float(z_scores(count_a == k, count_b == k)) < Z


def test_the_comparison_has_power():
    """A sampler that spreads 1.5x too fast, or not at all, is rejected by a wide margin."""
    sim = simulate_spread(SITES, "cubic", 2.0, N, seed=3)
    assert compare(sampler_times("cubic", 3.0, N, seed=4), sim) > 3 * Z
    assert compare(sampler_times("cubic", 0.0, N, seed=5), sim) > 3 * Z


def test_lam_prop_zero_is_the_plain_path():
    """lam_prop = 0: T is the ignition time itself (same draws), with P(T <= t) = kappa(t) per
    column and independent columns."""
    site = torch.ones(N, 6, dtype=torch.bool)
    sched = make_scheduler("cubic")
    s = sample_ignition_times(site, sched, torch.Generator().manual_seed(6))
    T = sample_switch_times(site, sched, 0.0, torch.Generator().manual_seed(6))
    assert torch.equal(T, s)
    for t in (0.4, 0.8):
        k = kappa_of("cubic", t)
        on = (T <= t).double()
        sd = math.sqrt(k * (1 - k) / N)
        assert ((on.mean(0) - k).abs() < Z * sd).all()
        both = (on[:, 0] * on[:, 1]).mean()
        assert abs(float(both) - k * k) < Z * math.sqrt(k * k * (1 - k * k) / N)
    # and the simulation at lam_prop = 0 agrees with the written-out kappa too
    sim = simulate_spread(6, "cubic", 0.0, N, seed=7)
    k = kappa_of("cubic", 0.6)
    assert ((((sim <= 0.6).double().mean(0)) - k).abs() < Z * math.sqrt(k * (1 - k) / N)).all()


def _shortest_paths(s, tau_r, tau_l, site):
    """Dijkstra over the line graph of one row's sites, from a virtual source at time 0 with an
    edge of length s_k to every site k."""
    K = len(s)
    best = [math.inf] * K
    heap = [(s[k], k) for k in range(K) if site[k]]
    heapq.heapify(heap)
    while heap:
        d, k = heapq.heappop(heap)
        if d >= best[k]:
            continue
        best[k] = d
        for j, w in ((k + 1, tau_r[k] if k + 1 < K else 0), (k - 1, tau_l[k - 1] if k else 0)):
            if 0 <= j < K and site[j] and d + w < best[j]:
                heapq.heappush(heap, (d + w, j))
    return best


@pytest.mark.parametrize("seed", range(20))
def test_first_passage_is_the_shortest_path(seed):
    """The cumsum / cummin form equals Dijkstra on the sites, with non-sites anywhere (given
    spans inside a row, padding) cutting the line, and arbitrary (not only [0, 1]) s."""
    g = torch.Generator().manual_seed(seed)
    B, K = 6, int(torch.randint(1, 14, (1,), generator=g))
    s = torch.rand(B, K, generator=g, dtype=torch.float64) * 3
    tau_r = torch.empty(B, K - 1, dtype=torch.float64).exponential_(2.0, generator=g)
    tau_l = torch.empty(B, K - 1, dtype=torch.float64).exponential_(0.5, generator=g)
    site = torch.rand(B, K, generator=g) < 0.75
    site[0] = True
    site[1] = False
    T = first_passage_times(s, tau_r, tau_l, site)
    for b in range(B):
        want = _shortest_paths(s[b].tolist(), tau_r[b].tolist(), tau_l[b].tolist(), site[b])
        for j in range(K):
            if site[b, j]:
                assert float(T[b, j]) == pytest.approx(want[j], rel=1e-12, abs=1e-12)
            else:
                assert math.isinf(float(T[b, j]))
    assert (T[site] <= s[site]).all()


def test_given_columns_and_padding_do_not_carry_the_spread():
    """A site next to a non-site is untouched by what happens beyond it."""
    s = torch.tensor([[0.05, 0.9, 0.9, 0.0, 0.9, 0.9]], dtype=torch.float64)
    tau = torch.full((1, 5), 0.01, dtype=torch.float64)
    site = torch.tensor([[True, True, True, False, True, True]])
    T = first_passage_times(s, tau, tau, site)
    assert T[0, :3].tolist() == pytest.approx([0.05, 0.06, 0.07])
    assert T[0, 4:].tolist() == pytest.approx([0.9, 0.9])  # column 3 (s = 0) is not a site


def test_sites_of_a_batch():
    batch = align_batch([[1, 2, 3], [1, 4]], [[1, 2, 9, 8, 7], [1, 4]], frozen=[2, 2])
    site = localized_sites(batch)
    n_cols = [(batch.z0[b] != BLANK) | (batch.z1[b] != BLANK) for b in range(2)]
    for b in range(2):
        assert site[b].tolist() == [j >= 2 and bool(n_cols[b][j]) for j in range(site.shape[1])]


def test_switched_neighbours_and_the_factor():
    switched = torch.tensor([[True, False, True, True, False, True]])
    site = torch.tensor([[False, True, True, True, True, True]])
    # column 0 is not a site: switched or not, it does not count
    assert switched_neighbours(switched, site).tolist() == [[0, 1, 1, 1, 2, 0]]
    sched = make_scheduler("cubic")
    t = torch.tensor([0.5, 0.5, 0.9, 0.2])
    n = torch.tensor([0, 1, 2, 2])
    got = hazard_factor(n, t, sched, 4.0)
    w = [3 * x**2 / (1 - x**3) for x in t.double().tolist()]
    want = [1.0, 1 + 4 / w[1], 1 + 8 / w[2], 1 + 8 / w[3]]
    assert got.tolist() == pytest.approx(want, rel=1e-12)
    assert hazard_factor(torch.tensor([0]), torch.tensor([0.0]), sched, 4.0).item() == 1.0
    # the loss's weight on a log-rate: h while w <= max_weight, h * max_weight / w beyond
    cw = clamped_edit_weight(got, t, sched, 2.0)
    assert cw.tolist() == pytest.approx([min(x, 2.0) * f for x, f in zip(w, want)], rel=1e-12)
    assert float(cw[1]) == pytest.approx(w[1] + 4.0)  # w(0.5) = 0.857 < 2: unclamped, = h
    assert clamped_edit_weight(got, t, sched, None).tolist() == pytest.approx(
        [x * f for x, f in zip(w, want)], rel=1e-12
    )


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("coupling", ["optimal", "noise"])
def test_localized_path_edits_and_their_factors(seed, coupling):
    """The path's remaining edits turn x_t into x1, the prefix stays, and each edit's factor
    is 1 + lam_prop * (switched neighbour sites of its column) / w(t), found column by column."""
    g = torch.Generator().manual_seed(seed)
    x0s, x1s, frozen = [], [], []
    for _ in range(5):
        f = int(torch.randint(1, 4, (1,), generator=g))
        prefix = list(range(50, 50 + f))
        n0 = int(torch.randint(0, 9, (1,), generator=g))
        x0s.append(prefix + torch.randint(1, 6, (n0,), generator=g).tolist())
        n1 = int(torch.randint(0, 12, (1,), generator=g))
        x1s.append(prefix + torch.randint(1, 6, (n1,), generator=g).tolist())
        frozen.append(f)
    batch = align_batch(x0s, x1s, frozen, coupling=coupling, generator=g)
    sched, lam = make_scheduler("cubic"), 3.0
    t = torch.rand(5, generator=g)
    state = g.get_state()
    path = sample_path(batch, sched, t, lam_prop=lam, generator=g)
    factors = path.edit_weight
    g.set_state(state)
    T = sample_switch_times(localized_sites(batch), sched, lam, g)
    assert len(factors) == len(path.edit_op)
    assert (factors >= 1).all()
    z0, z1 = batch.z0.tolist(), batch.z1.tolist()
    k = 0
    for b in range(5):
        n = int(path.attention_mask[b].sum())
        x_t = path.x_t[b, :n].tolist()
        sel = path.edit_batch == b
        fields = (path.edit_op, path.edit_pos, path.edit_token)
        edits = list(zip(*(x[sel].tolist() for x in fields)))
        assert apply_edits(x_t, edits) == x1s[b]
        assert x_t[: frozen[b]] == x1s[b][: frozen[b]]
        w = 3 * float(t[b]) ** 2 / (1 - float(t[b]) ** 3)

        def is_site(j, b=b):
            inside = 0 <= j < len(z0[b]) and j >= frozen[b]
            return inside and (z0[b][j], z1[b][j]) != (BLANK, BLANK)

        def on(j, b=b):
            return is_site(j) and float(T[b, j]) <= float(t[b])

        for j in range(len(z0[b])):
            if is_site(j) and not on(j) and z0[b][j] != z1[b][j]:  # a remaining edit
                n_on = on(j - 1) + on(j + 1)
                assert float(factors[k]) == pytest.approx(1 + lam * n_on / w, rel=1e-5)
                k += 1
    assert k == len(factors)
    # with lam_prop = 0 every factor is 1
    plain = sample_path(batch, sched, t, generator=g)
    assert (plain.edit_weight == 1).all() and len(plain.edit_weight) == len(plain.edit_op)


def test_edit_hazard_factors_count_only_switched_sites():
    # row: anchor (given), then insert a, b, c; at t, column 1 switched, 2 and 3 pending
    z0 = torch.tensor([[1, BLANK, BLANK, BLANK]])
    z1 = torch.tensor([[1, 5, 6, 7]])
    batch = AlignedBatch(z0, z1, torch.tensor([1]))
    T = torch.tensor([[math.inf, 0.1, 0.9, 0.95]], dtype=torch.float64)
    sched = make_scheduler("linear")  # w(t) = 1 / (1 - t)
    f = edit_hazard_factors(batch, T, torch.tensor([0.5]), sched, 2.0)
    assert f.tolist() == pytest.approx([1 + 2.0 * 1 * 0.5, 1.0])


def test_rejects_a_negative_rate():
    with pytest.raises(ValueError, match="lam_prop"):
        sample_switch_times(torch.ones(1, 3, dtype=torch.bool), make_scheduler("linear"), -1.0)


# ---------------------------------------------------------------------------------------------
# the loss on localized paths


def test_loss_weights_each_edit_log_rate_by_its_factor():
    """edit_flow_loss on a localized path: the outflow term as on plain paths, each edit's
    log-rate term times min(w, max_weight) * h_e / w (``clamped_edit_weight``)."""
    from editflow_core import EditFlowOutput, edit_flow_loss

    g = torch.Generator().manual_seed(11)
    x0s = [[1] + torch.randint(2, 9, (int(n),), generator=g).tolist() for n in (3, 0, 7, 5)]
    x1s = [[1] + torch.randint(2, 9, (int(n),), generator=g).tolist() for n in (9, 6, 2, 8)]
    batch = align_batch(x0s, x1s, coupling="optimal")
    sched = make_scheduler("cubic")
    t = torch.tensor([0.2, 0.5, 0.8, 0.95])  # w(0.95) = 19.7, w(0.8) = 3.9
    path = sample_path(batch, sched, t, lam_prop=5.0, generator=g)
    assert (path.edit_weight > 1).any()
    B, L = path.x_t.shape
    rates = torch.rand(B, L, 3, generator=g) + 0.1
    ins = torch.randn(len(path.ins_rows), 12, generator=g)
    sub = torch.randn(len(path.sub_rows), 12, generator=g)
    out = EditFlowOutput(rates, ins, sub)
    for max_weight in (None, 20.0, 2.0):
        got = edit_flow_loss(out, path, sched, normalize="none", max_weight=max_weight)
        w = sched.weight(t.double())
        w_c = w if max_weight is None else w.clamp(max=max_weight)
        outflow = float(((rates * path.rate_mask).sum((1, 2)).double() * w_c).sum())
        edit = 0.0
        for e in range(len(path.edit_op)):
            b, p, op = (int(x[e]) for x in (path.edit_batch, path.edit_pos, path.edit_op))
            lp = math.log(float(rates[b, p, op]))
            if op != 1:  # DEL has no token
                logits = ins if op == 0 else sub
                log_q = torch.log_softmax(logits[int(path.edit_row[e])].double(), -1)
                lp += float(log_q[int(path.edit_token[e])])
            weight = clamped_edit_weight(
                path.edit_weight[e : e + 1], t[b : b + 1], sched, max_weight
            )
            edit += float(weight) * lp
        assert float(got.outflow) * B == pytest.approx(outflow, rel=1e-5)
        assert float(got.edit) * B == pytest.approx(edit, rel=1e-5)


@pytest.mark.parametrize("lam_prop", [0.0, 3.0])
def test_loss_minimiser_is_the_expected_hazard_over_w(lam_prop):
    """x0 = [BOS], x1 = [BOS, a, a]: two insertion columns. In the rows whose x_t is [BOS, a],
    one column has switched and the other is pending with one switched neighbour, so its hazard
    is w + lam_prop and the optimal rate, the same at both gaps, is (1 + lam_prop / w) / 2."""
    from editflow_core import EditFlowOutput, edit_flow_loss, select_rows

    a, B = 5, 400
    batch = align_batch([[1]] * B, [[1, a, a]] * B, coupling="noise")
    sched = make_scheduler("linear")  # w(t) = 1 / (1 - t)
    t0 = 0.3
    path = sample_path(
        batch,
        sched,
        torch.full((B,), t0),
        lam_prop=lam_prop,
        generator=torch.Generator().manual_seed(0),
    )
    rows = torch.nonzero(path.attention_mask.sum(1) == 2)[:, 0]
    assert len(rows) > 50
    path = select_rows(path, rows)
    assert torch.equal(path.edit_batch, torch.arange(len(rows)))  # one pending edit per row
    w = 1 / (1 - t0)
    assert path.edit_weight.tolist() == pytest.approx([1 + lam_prop / w] * len(rows))
    logits = torch.full((len(path.ins_rows), 8), -20.0)
    logits[:, a] = 20.0

    def loss(lam: float) -> float:
        rates = torch.zeros(len(rows), 2, 3)
        rates[..., 0] = lam
        out = EditFlowOutput(rates, logits, torch.zeros(0, 8))
        return float(edit_flow_loss(out, path, sched, max_weight=None).loss)

    lo, hi, r = 0.05, 5.0, (5**0.5 - 1) / 2
    for _ in range(60):
        m1, m2 = hi - r * (hi - lo), lo + r * (hi - lo)
        lo, hi = (lo, m2) if loss(m1) < loss(m2) else (m1, hi)
    assert (lo + hi) / 2 == pytest.approx((1 + lam_prop / w) / 2, abs=1e-3)


def test_sample_path_lam_prop_zero_is_todays_path():
    """lam_prop = 0 draws exactly what sample_path always drew (same generator stream)."""
    batch = align_batch([[1, 2, 3]] * 3, [[1, 4, 2, 5, 6]] * 3, generator=torch.Generator())
    sched = make_scheduler("cubic")
    a = sample_path(batch, sched, generator=torch.Generator().manual_seed(3))
    b = sample_path(batch, sched, lam_prop=0.0, generator=torch.Generator().manual_seed(3))
    for name in ("x_t", "t", "edit_batch", "edit_pos", "edit_op", "edit_token", "edit_weight"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    with pytest.raises(ValueError, match="not both"):
        sample_path(batch, sched, kappa=torch.ones(3, 5), lam_prop=1.0)
