"""One tau-leap's arithmetic against slow references (hypothesis)."""

import torch
from editflow_core.leap import apply_edits, fire_edits, row_edits
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
    ins = (torch.rand(B, L, generator=g) < 0.4) & inside
    ds = (torch.rand(B, L, generator=g) < 0.5) & inside
    dele = ds & (torch.rand(B, L, generator=g) < 0.5)
    sub = ds & ~dele
    ins_tok = torch.where(ins, torch.randint(50, 99, (B, L), generator=g), PAD)
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
            if ins[b, i]:
                edits.append((INS, i, int(ins_tok[b, i])))
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
        ops = row_edits(
            ids[b, :n].tolist(), new[b, :n].tolist(), ins_tok[b, :n].tolist(),
            ins[b, :n].tolist(), dele[b, :n].tolist(), sub[b, :n].tolist(),
        )  # fmt: skip
        assert len(ops) == int(ins[b].sum() + dele[b].sum() + sub[b].sum())
        code = {"ins": INS, "del": DEL, "sub": SUB}
        replay = apply_reference(ids[b, :n].tolist(), [(code[e.op], e.pos, e.token) for e in ops])
        assert replay == out[b, : int(out_len[b])].tolist()
        assert all(e.old == int(ids[b, e.pos]) for e in ops if e.op != "ins")


@given(st.integers(1, 4), st.integers(1, 12), st.integers(0, 2**31), st.floats(0.0, 30.0))
@settings(max_examples=100, deadline=None)
def test_fire_edits_respects_the_cap_and_drops_the_rightmost_insertions(B, L, seed, rate):
    g = torch.Generator().manual_seed(seed)
    lam = torch.rand(B, L, 3, generator=g) * rate
    scale = torch.rand(B, 1, generator=g)
    u = torch.rand(3, B, L, generator=g)
    room = torch.randint(-2, 4, (B,), generator=g)  # cap - length; < 0: already over
    ins, dele, sub, capped = fire_edits(lam, scale, u, room)
    free, dele2, sub2, none = fire_edits(lam, scale, u, torch.full((B,), 10**6))
    assert torch.equal(dele, dele2) and torch.equal(sub, sub2) and not none.any()
    assert not (dele & sub).any() and not (ins & ~free).any()
    for b in range(B):
        kept, all_ = ins[b].nonzero().flatten().tolist(), free[b].nonzero().flatten().tolist()
        assert kept == all_[: len(kept)]  # a left prefix of the uncapped insertions
        allowed = max(int(room[b] + dele[b].sum()), 0)
        assert len(kept) == min(len(all_), allowed)
        assert bool(capped[b]) == (len(all_) > allowed)


def test_fire_edits_fires_nothing_without_rates_and_everything_at_huge_rates():
    u = torch.rand(3, 2, 5)
    ins, dele, sub, _ = fire_edits(torch.zeros(2, 5, 3), torch.ones(2, 1), u, torch.full((2,), 99))
    assert not (ins | dele | sub).any()
    lam = torch.zeros(2, 5, 3)
    lam[..., INS], lam[..., DEL] = 1e4, 1e4
    ins, dele, sub, _ = fire_edits(lam, torch.ones(2, 1), u * 0.999, torch.full((2,), 99))
    assert ins.all() and dele.all() and not sub.any()
