"""Path sampling: remaining edits applied to x_t give x1; frozen columns never edited."""

import pytest
import torch
from editflow_core import (
    BLANK,
    DEL,
    INS,
    SUB,
    align_batch,
    make_scheduler,
    prefix_layout,
    rate_mask,
    sample_path,
)
from editflow_testing.reference import apply_edits
from hypothesis import given, settings
from hypothesis import strategies as st

seqs = st.lists(st.integers(1, 6), max_size=25)


def _rows(path, b):
    sel = path.edit_batch == b
    return list(
        zip(path.edit_op[sel].tolist(), path.edit_pos[sel].tolist(), path.edit_token[sel].tolist())
    )


@given(
    st.lists(st.tuples(seqs, seqs, st.integers(1, 3)), min_size=1, max_size=4),
    st.sampled_from(["optimal", "noise"]),
    st.sampled_from(["linear", "cubic", "cosine"]),
    st.integers(0, 10**6),
    st.sampled_from([None, 0.0, 0.999]),
)
@settings(max_examples=300, deadline=None)
def test_remaining_edits_turn_x_t_into_x1(pairs, coupling, sched, seed, fixed_t):
    x0s, x1s, frozen = [], [], []
    for a, b, f in pairs:
        prefix = [50 + k for k in range(f)]
        x0s.append(prefix + a)
        x1s.append(prefix + b)
        frozen.append(f)
    g = torch.Generator().manual_seed(seed)
    batch = align_batch(x0s, x1s, frozen, coupling=coupling, generator=g)
    t = None if fixed_t is None else torch.full((len(pairs),), fixed_t)
    path = sample_path(batch, make_scheduler(sched), t, generator=g, pad_token_id=0)
    B, L = path.x_t.shape
    assert path.attention_mask.shape == (B, L)
    for b in range(B):
        n = int(path.attention_mask[b].sum())
        x_t = path.x_t[b, :n].tolist()
        assert (path.x_t[b, n:] == 0).all()
        edits = _rows(path, b)
        assert apply_edits(x_t, edits) == x1s[b]
        f = frozen[b]
        assert x_t[:f] == x1s[b][:f]
        for op, pos, _ in edits:
            assert pos >= (f - 1 if op == INS else f), "an edit touched the frozen prefix"
            assert path.rate_mask[b, pos, op], "an edit sits where its rate is masked out"
        assert path.target_len[b] == len(x1s[b]) - f
    # token rows: every ins/sub edit points at its own (row, position)
    for code, rows in ((INS, path.ins_rows), (SUB, path.sub_rows)):
        sel = path.edit_op == code
        flat = path.edit_batch[sel] * L + path.edit_pos[sel]
        assert torch.equal(rows[path.edit_row[sel]], flat)
        assert torch.equal(rows, torch.unique(flat))
    assert (path.edit_row[path.edit_op == DEL] == -1).all()


def test_t_zero_gives_x0_and_t_near_one_gives_x1():
    batch = align_batch(
        [[1, 9, 9]], [[1, 2, 3, 4]], coupling="noise", generator=torch.Generator().manual_seed(0)
    )
    sched = make_scheduler("linear")
    p0 = sample_path(batch, sched, torch.zeros(1))
    assert p0.x_t[0].tolist()[:3] == [1, 9, 9] and int(p0.attention_mask.sum()) == 3
    p1 = sample_path(batch, sched, torch.ones(1))
    assert p1.x_t[0].tolist() == [1, 2, 3, 4] and len(p1.edit_op) == 0


def test_kappa_fraction_of_columns_taken_from_x1():
    n = 4000
    batch = align_batch([[1] + [7] * n], [[1] + [3] * n], coupling="noise")
    path = sample_path(
        batch,
        make_scheduler("linear"),
        torch.tensor([0.3]),
        generator=torch.Generator().manual_seed(0),
    )
    remaining = len(path.edit_op)
    assert abs(remaining / n - 0.7) < 0.03
    assert set(path.edit_op.tolist()) == {SUB}


def test_rate_mask():
    mask = torch.tensor([[1, 1, 1, 1, 0]], dtype=torch.bool)
    m = rate_mask(mask, *prefix_layout(torch.tensor([2]), 5))
    assert m[0, :, INS].tolist() == [False, True, True, True, False]
    assert m[0, :, DEL].tolist() == [False, False, True, True, False]
    assert torch.equal(m[..., DEL], m[..., SUB])


def test_path_needs_an_anchor():
    batch = align_batch([[1]], [[1, 2]], frozen=[0])
    with pytest.raises(ValueError, match="anchor"):
        sample_path(batch, make_scheduler("linear"))


def test_padding_columns_are_inert():
    batch = align_batch([[1], [1, 2, 3, 4, 5]], [[1, 8], [1]], coupling="optimal")
    assert (batch.z0[0, 2:] == BLANK).all() and (batch.z1[0, 2:] == BLANK).all()
    path = sample_path(batch, make_scheduler("linear"), torch.zeros(2))
    assert _rows(path, 0) == [(INS, 0, 8)]
    assert sorted(op for op, _, _ in _rows(path, 1)) == [DEL] * 4
