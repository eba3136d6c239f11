"""One tau-leap's arithmetic against slow references (hypothesis)."""

import math

import pytest
import torch
from editflow_core.leap import apply_edits, fire_edits, insertion_counts, row_edits
from editflow_core.model_protocol import DEL, INS, SUB
from editflow_testing.reference import apply_edits as apply_reference
from hypothesis import given, settings
from hypothesis import strategies as st

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
    st.booleans(),
)
@settings(max_examples=100, deadline=None)
def test_fire_edits_respects_the_cap_and_drops_the_rightmost_insertions(B, L, seed, rate, last):
    g = torch.Generator().manual_seed(seed)
    lam = torch.rand(B, L, 3, generator=g) * rate
    frac = torch.ones(B, 1) if last else torch.rand(B, 1, generator=g)
    u = torch.rand(3, B, L, generator=g)
    room = torch.randint(-2, 4, (B,), generator=g)  # cap - length; < 0: already over
    ins, dele, sub, capped = fire_edits(lam, frac, u, room)
    free, dele2, sub2, none = fire_edits(lam, frac, u, torch.full((B,), 10**6))
    assert torch.equal(dele, dele2) and torch.equal(sub, sub2) and not none.any()
    assert not (dele & sub).any() and (ins <= free).all()
    if not last:
        assert free.max() <= 1  # one insertion per gap before the last step
    for b in range(B):
        expand = lambda c: [i for i, n in enumerate(c.tolist()) for _ in range(n)]  # noqa: E731
        kept, all_ = expand(ins[b]), expand(free[b])
        assert kept == all_[: len(kept)]  # a left prefix of the uncapped insertions
        allowed = max(int(room[b] + dele[b].sum()), 0)
        assert len(kept) == min(len(all_), allowed)
        assert bool(capped[b]) == (len(all_) > allowed)


def fire_reference(lam, f, u):
    """The firing rule for one position, from its statement: p = min(1, lam * f) for one
    insertion and for a deletion-or-substitution (a deletion with share lam_del / (lam_del +
    lam_sub)); on the last step (f = 1) floor(lam_ins) + 1{u < frac(lam_ins)} insertions."""
    li, ld, ls = lam
    if f == 1.0:
        n_ins = math.floor(li) + (u[0] < li - math.floor(li))
    else:
        n_ins = int(u[0] < min(1.0, li * f))
    fired = u[1] < min(1.0, (ld + ls) * f)
    is_del = fired and u[2] * (ld + ls) < ld
    return n_ins, is_del, fired and not is_del


@given(st.integers(0, 2**31), st.sampled_from([1e-4, 0.03, 0.3, 0.9, 1.0]), st.floats(0.0, 4.0))
@settings(max_examples=100, deadline=None)
def test_fire_edits_matches_the_rule_position_by_position(seed, f, scale):
    g = torch.Generator().manual_seed(seed)
    lam = torch.rand(2, 7, 3, generator=g, dtype=torch.float64) * scale
    lam[lam < 0.2 * scale] = 0.0  # some rates are exactly zero
    u = torch.rand(3, 2, 7, generator=g, dtype=torch.float64)
    ins, dele, sub, _ = fire_edits(
        lam, torch.full((2, 1), f, dtype=torch.float64), u, torch.full((2,), 99)
    )
    for b in range(2):
        for i in range(7):
            want = fire_reference(lam[b, i].tolist(), f, u[:, b, i].tolist())
            assert (int(ins[b, i]), bool(dele[b, i]), bool(sub[b, i])) == want


def test_fire_edits_fires_nothing_without_rates_and_everything_pending_on_the_last_step():
    u = torch.rand(3, 2, 5) * 0.999
    ins, dele, sub, _ = fire_edits(torch.zeros(2, 5, 3), torch.ones(2, 1), u, torch.full((2,), 99))
    assert not (ins.bool() | dele | sub).any()
    lam = torch.zeros(2, 5, 3)
    lam[..., INS], lam[..., DEL] = 3.0, 1.0  # sure of 3 insertions and a deletion everywhere
    ins, dele, sub, _ = fire_edits(lam, torch.ones(2, 1), u, torch.full((2,), 99))
    assert (ins == 3).all() and dele.all() and not sub.any()
    ins, dele, sub, _ = fire_edits(lam, torch.full((2, 1), 0.999), u, torch.full((2,), 99))
    assert (ins <= 1).all()


@pytest.mark.parametrize("lam", [0.3, 1.0, 1.7, 4.25])
def test_last_step_inserts_the_expected_number_of_tokens(lam):
    n = 100_000
    u = torch.rand(1, n, generator=torch.Generator().manual_seed(0))
    k = insertion_counts(torch.full((1, n), lam), torch.ones(1, 1), u)[0].double()
    lo = math.floor(lam)
    assert set(k.unique().tolist()) <= {lo, lo + 1}
    assert abs(k.mean().item() - lam) < 5 * math.sqrt((lam - lo) * (1 - lam + lo) / n) + 1e-9
