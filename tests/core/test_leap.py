"""One tau-leap's arithmetic against slow references (hypothesis)."""

import math

import pytest
import torch
from editflow_core.leap import apply_edits, fire_edits, insertion_counts, row_edits
from editflow_core.protocol import DEL, INS, SUB
from hypothesis import given, settings
from hypothesis import strategies as st

from .reference import apply_edits as apply_reference

PAD = 0


@st.composite
def batches(draw):
    """A padded batch with random fired edits inside each row's length."""
    B = draw(st.integers(1, 5))
    lengths = [draw(st.integers(1, 9)) for _ in range(B)]
    L = max(lengths)
    seed = draw(st.integers(0, 2**31))
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 50, (B, L), generator=g)
    inside = torch.arange(L)[None] < torch.tensor(lengths)[:, None]
    ids[~inside] = PAD
    ins = torch.randint(0, 4, (B, L), generator=g) * (torch.rand(B, L, generator=g) < 0.4)
    ins = ins * inside  # insertions after each position: 0..3
    ds = (torch.rand(B, L, generator=g) < 0.5) & inside
    dele = ds & (torch.rand(B, L, generator=g) < 0.5)
    sub = ds & ~dele
    ins_tok = torch.randint(50, 99, (B, L, 3), generator=g)
    ins_tok[torch.arange(3)[None, None] >= ins[..., None]] = PAD
    new = torch.where(sub, torch.randint(50, 99, (B, L), generator=g), ids)
    return ids, new, torch.tensor(lengths), ins, dele, sub, ins_tok


@given(batches())
@settings(max_examples=100, deadline=None)
def test_apply_edits_matches_the_list_reference(batch):
    ids, new, lengths, ins, dele, sub, ins_tok = batch
    out, out_len = apply_edits(new, lengths, ins, dele, ins_tok, PAD)
    for b in range(len(lengths)):
        n = int(lengths[b])
        edits = []
        for i in range(n):
            if dele[b, i]:
                edits.append((DEL, i, None))
            elif sub[b, i]:
                edits.append((SUB, i, int(new[b, i])))
            for j in range(int(ins[b, i])):
                edits.append((INS, i, int(ins_tok[b, i, j])))
        want = apply_reference(ids[b, :n].tolist(), edits)
        assert out[b, : int(out_len[b])].tolist() == want
        assert (out[b, int(out_len[b]) :] == PAD).all()


@given(batches())
@settings(max_examples=100, deadline=None)
def test_row_edits_replayed_give_the_applied_row(batch):
    ids, new, lengths, ins, dele, sub, ins_tok = batch
    out, out_len = apply_edits(new, lengths, ins, dele, ins_tok, PAD)
    for b in range(len(lengths)):
        n = int(lengths[b])
        added = [toks[:c] for toks, c in zip(ins_tok[b, :n].tolist(), ins[b, :n].tolist())]
        ops = row_edits(
            ids[b, :n].tolist(), new[b, :n].tolist(), added,
            dele[b, :n].tolist(), sub[b, :n].tolist(),
        )  # fmt: skip
        assert len(ops) == int(ins[b].sum() + dele[b].sum() + sub[b].sum())
        code = {"ins": INS, "del": DEL, "sub": SUB}
        replay = apply_reference(ids[b, :n].tolist(), [(code[e.op], e.pos, e.token) for e in ops])
        assert replay == out[b, : int(out_len[b])].tolist()
        # consumers (CLI, playground) replay right to left, inserting right after e.pos
        right_to_left = ids[b, :n].tolist()
        for e in reversed(ops):
            if e.op == "ins":
                right_to_left.insert(e.pos + 1, e.token)
            elif e.op == "del":
                del right_to_left[e.pos]
            else:
                right_to_left[e.pos] = e.token
        assert right_to_left == replay
        assert all(e.old == int(ids[b, e.pos]) for e in ops if e.op != "ins")


@given(
    st.integers(1, 4),
    st.integers(1, 12),
    st.integers(0, 2**31),
    st.floats(0.0, 30.0),
    st.sampled_from(["posterior", "hazard"]),
)
@settings(max_examples=100, deadline=None)
def test_fire_edits_respects_the_cap_and_drops_the_rightmost_insertions(B, L, seed, rate, rule):
    g = torch.Generator().manual_seed(seed)
    lam = torch.rand(B, L, 3, generator=g) * rate
    frac = torch.rand(B, 1, generator=g)
    u = torch.rand(3, B, L, generator=g)
    room = torch.randint(-2, 4, (B,), generator=g)  # cap - length; < 0: already over
    ins, dele, sub, capped = fire_edits(lam, frac, u, room, rule)
    free, dele2, sub2, none = fire_edits(lam, frac, u, torch.full((B,), 10**6), rule)
    assert torch.equal(dele, dele2) and torch.equal(sub, sub2) and not none.any()
    assert not (dele & sub).any() and (ins <= free).all()
    if rule == "hazard":
        assert free.max() <= 1
    for b in range(B):
        expand = lambda c: [i for i, n in enumerate(c.tolist()) for _ in range(n)]  # noqa: E731
        kept, all_ = expand(ins[b]), expand(free[b])
        assert kept == all_[: len(kept)]  # a left prefix of the uncapped insertions
        allowed = max(int(room[b] + dele[b].sum()), 0)
        assert len(kept) == min(len(all_), allowed)
        assert bool(capped[b]) == (len(all_) > allowed)


def test_fire_edits_fires_nothing_without_rates_and_everything_pending_on_the_last_step():
    u = torch.rand(3, 2, 5)
    for rule in ("posterior", "hazard"):
        ins, dele, sub, _ = fire_edits(
            torch.zeros(2, 5, 3), torch.ones(2, 1), u, torch.full((2,), 99), rule
        )
        assert not (ins.bool() | dele | sub).any()
    lam = torch.zeros(2, 5, 3)
    lam[..., INS], lam[..., DEL] = 3.0, 1.0  # sure of 3 insertions and a deletion everywhere
    ins, dele, sub, _ = fire_edits(lam, torch.ones(2, 1), u * 0.999, torch.full((2,), 99))
    assert (ins == 3).all() and dele.all() and not sub.any()
    ins, dele, sub, _ = fire_edits(lam, torch.ones(2, 1), u * 0.999, torch.full((2,), 99), "hazard")
    assert (ins == 1).all() and dele.all() and not sub.any()


def count_law(lam: float, f: float) -> list[float]:
    """P(K = k) for K ~ Binomial(N, f), N = floor(lam) + Bernoulli(lam - floor(lam)), from
    math.comb: the law the "posterior" rule promises."""
    n, phi = math.floor(lam), lam - math.floor(lam)

    def binom(m: int, k: int) -> float:
        return math.comb(m, k) * f**k * (1 - f) ** (m - k) if k <= m else 0.0

    return [(1 - phi) * binom(n, k) + phi * binom(n + 1, k) for k in range(n + 2)]


@pytest.mark.parametrize(
    "lam,f", [(0.3, 0.2), (0.9, 1.0), (1.0, 0.4), (1.7, 0.35), (2.0, 1.0), (4.25, 0.6), (7.5, 0.05)]
)
def test_insertion_counts_follow_the_binomial_law(lam, f):
    n = 200_000
    u = torch.rand(1, n, generator=torch.Generator().manual_seed(0))
    k = insertion_counts(torch.full((1, n), lam), torch.tensor([[f]]), u)[0]
    law = count_law(lam, f)
    freq = torch.bincount(k, minlength=len(law)).double() / n
    assert len(freq) == len(law)  # never more than floor(lam) + 1
    for p, q in zip(freq.tolist(), law):
        assert abs(p - q) < 5 * math.sqrt(q * (1 - q) / n) + 1e-9
    assert (
        abs(k.double().mean().item() - lam * f) < 5 * math.sqrt(k.double().var().item() / n) + 1e-9
    )
    # and K >= 1 exactly when u < P(K >= 1)
    assert torch.equal(k >= 1, u[0] < 1 - law[0])
