"""Ragged batches: groups of rows of similar x_t length give the batch's loss and gradients."""

import itertools

import pytest
import torch
from editflow_core import (
    BLANK,
    EditFlowOutput,
    align_batch,
    edit_flow_loss,
    make_scheduler,
    path_totals,
    sample_path,
    select_rows,
    split_by_length,
)
from editflow_core.ragged import group_rows
from hypothesis import given, settings
from hypothesis import strategies as st

V = 13


def random_path(seed, B=9, x0="empty"):
    """Rows of very different lengths, some with a prompt, x0 = empty or masks."""
    g = torch.Generator().manual_seed(seed)
    x0s, x1s, frozen = [], [], []
    for _ in range(B):
        f = int(torch.randint(1, 4, (1,), generator=g))
        prefix = [1] + torch.randint(3, V, (f - 1,), generator=g).tolist()
        n1 = int(torch.randint(0, 24, (1,), generator=g))
        x1s.append(prefix + torch.randint(3, V, (n1,), generator=g).tolist())
        n0 = 0 if x0 == "empty" else int(torch.randint(0, 16, (1,), generator=g))
        x0s.append(prefix + [2] * n0)
        frozen.append(f)
    batch = align_batch(x0s, x1s, frozen, generator=g)
    return sample_path(batch, make_scheduler("cubic"), generator=g)


class RowModel(torch.nn.Module):
    """A model whose output at a row depends on that row's real tokens only (a masked mean
    gives each position context), like a transformer with an attention mask."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.emb = torch.nn.Parameter(torch.randn(V, 8, generator=g))
        self.ctx = torch.nn.Parameter(torch.randn(8, 8, generator=g) / 3)
        self.rate = torch.nn.Parameter(torch.randn(8, 3, generator=g) / 3)
        self.ins = torch.nn.Parameter(torch.randn(8, V, generator=g))
        self.sub = torch.nn.Parameter(torch.randn(8, V, generator=g))

    def forward(self, input_ids, attention_mask, t, ins_rows, sub_rows):
        m = attention_mask.float()[..., None]
        e = self.emb[input_ids]
        mean = (e * m).sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp_min(1)
        h = torch.tanh(e + mean @ self.ctx + t[:, None, None])  # (B, L, 8)
        flat = h.flatten(0, 1)
        return EditFlowOutput(
            torch.nn.functional.softplus(h @ self.rate),
            flat[ins_rows] @ self.ins,
            flat[sub_rows] @ self.sub,
        )


def loss_and_grads(model, paths, normalize, totals):
    model.zero_grad()
    total = 0.0
    for path in paths:
        out = model(**path.model_inputs())
        loss = edit_flow_loss(
            out, path, make_scheduler("cubic"), normalize=normalize, batch_totals=totals
        ).loss
        loss.backward()
        total += float(loss.detach())
    return total, {
        n: torch.zeros_like(p) if p.grad is None else p.grad.clone()
        for n, p in model.named_parameters()
    }


@given(
    st.integers(0, 10**6),
    st.sampled_from(["batch_tokens", "none", "x1_length"]),
    st.sampled_from(["empty", "masks"]),
    st.sampled_from([1, 20, 60, 400]),
)
@settings(max_examples=40, deadline=None)
def test_groups_give_the_batch_loss_and_gradients(seed, normalize, x0, budget):
    path = random_path(seed, x0=x0)
    model = RowModel()
    want, want_grads = loss_and_grads(model, [path], normalize, None)
    groups = split_by_length(path, budget)
    got, grads = loss_and_grads(model, groups, normalize, path_totals(path))
    assert got == pytest.approx(want, rel=1e-5, abs=1e-6)
    for name, grad in grads.items():
        torch.testing.assert_close(grad, want_grads[name], rtol=1e-4, atol=1e-6)
    if budget == 400:  # everything fits: with forwards dear, one forward
        assert len(split_by_length(path, budget, forward_cost=1e9)) == 1


def edit_list(path, rows):
    """Every edit as (original row, x_t position, op, target token, the x_t token at the
    position, the x_t token at its token row): read from the padded tensors directly."""
    L = path.x_t.shape[1]
    out = []
    for e in range(len(path.edit_batch)):
        b, p, op = int(path.edit_batch[e]), int(path.edit_pos[e]), int(path.edit_op[e])
        r = int(path.edit_row[e])
        at_row = None
        if r >= 0:
            flat = int((path.ins_rows if op == 0 else path.sub_rows)[r])
            assert flat // L == b
            at_row = (flat % L, int(path.x_t[b, flat % L]))
        out.append((rows[b], p, op, int(path.edit_token[e]), int(path.x_t[b, p]), at_row))
    return sorted(out)


@pytest.mark.parametrize("seed", range(6))
def test_select_rows_keeps_each_rows_tokens_and_edits(seed):
    path = random_path(seed)
    B = path.x_t.shape[0]
    whole = edit_list(path, list(range(B)))
    rows = sorted(
        torch.randperm(B, generator=torch.Generator().manual_seed(seed))[: B // 2].tolist()
    )
    part = select_rows(path, torch.tensor(rows))
    lengths = path.attention_mask.sum(1)
    assert part.x_t.shape == (len(rows), int(lengths[rows].max()))
    for i, b in enumerate(rows):
        n = int(lengths[b])
        assert part.x_t[i, :n].tolist() == path.x_t[b, :n].tolist()
        assert part.rate_mask[i].tolist() == path.rate_mask[b, : part.x_t.shape[1]].tolist()
        assert (float(part.t[i]), int(part.frozen[i]), int(part.target_len[i])) == (
            float(path.t[b]),
            int(path.frozen[b]),
            int(path.target_len[b]),
        )
    assert edit_list(part, rows) == [e for e in whole if e[0] in rows]
    assert torch.equal(part.ins_rows, part.ins_rows.unique()) and torch.equal(
        part.sub_rows, part.sub_rows.unique()
    )  # still sorted and unique


def brute_force(lengths, max_tokens, cost):
    """Best cost over every partition of the length-sorted rows into contiguous groups."""
    sizes = sorted(lengths)
    n, best = len(sizes), float("inf")
    for cuts in itertools.product((False, True), repeat=n - 1):
        bounds = [0] + [i + 1 for i, c in enumerate(cuts) if c] + [n]
        total = 0.0
        for a, b in itertools.pairwise(bounds):
            padded = (b - a) * sizes[b - 1]
            if padded > max_tokens and b - a > 1:
                total = float("inf")
                break
            total += padded + cost
        best = min(best, total)
    return best


@given(
    st.lists(st.integers(1, 40), min_size=1, max_size=9),
    st.integers(1, 200),
    st.sampled_from([0.0, 3.0, 25.0]),
)
@settings(max_examples=150, deadline=None)
def test_group_rows_is_the_cheapest_partition_within_the_budget(lengths, max_tokens, cost):
    groups = group_rows(lengths, max_tokens, cost)
    assert sorted(r for g in groups for r in g) == list(range(len(lengths)))
    got = 0.0
    for g in groups:
        padded = len(g) * max(lengths[r] for r in g)
        assert padded <= max_tokens or len(g) == 1
        got += padded + cost
    assert got == pytest.approx(brute_force(lengths, max_tokens, cost))


def test_split_by_length_padding_and_errors():
    path = random_path(3, B=16)
    lengths = path.attention_mask.sum(1)
    groups = split_by_length(path, 64)
    padded = sum(g.x_t.numel() for g in groups)
    assert padded < path.x_t.numel()  # the point of it
    assert sum(g.x_t.shape[0] for g in groups) == 16
    assert sum(int(g.attention_mask.sum()) for g in groups) == int(lengths.sum())
    assert all(
        (g.x_t[~g.attention_mask] == path.x_t[~path.attention_mask][0]).all() for g in groups
    )
    assert BLANK not in torch.cat([g.x_t.flatten() for g in groups]).tolist()
    with pytest.raises(ValueError, match="max_tokens"):
        split_by_length(path, 0)
