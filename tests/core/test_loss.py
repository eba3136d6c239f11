"""The loss against a slow per-example reference with full log-softmax."""

import pytest
import torch
from editflow_core import EditFlowOutput, align_batch, edit_flow_loss, make_scheduler, sample_path
from editflow_testing.reference import loss_reference
from hypothesis import given, settings
from hypothesis import strategies as st

V = 11


def _random_path(seed, B=4):
    g = torch.Generator().manual_seed(seed)
    x0s, x1s, frozen = [], [], []
    for _ in range(B):
        f = int(torch.randint(1, 4, (1,), generator=g))
        prefix = torch.randint(1, V, (f,), generator=g).tolist()
        x0s.append(
            prefix
            + torch.randint(
                1, V, (int(torch.randint(0, 12, (1,), generator=g)),), generator=g
            ).tolist()
        )
        x1s.append(
            prefix
            + torch.randint(
                1, V, (int(torch.randint(0, 12, (1,), generator=g)),), generator=g
            ).tolist()
        )
        frozen.append(f)
    batch = align_batch(x0s, x1s, frozen, coupling="optimal", generator=g)
    return sample_path(batch, make_scheduler("cubic"), generator=g)


def _model_outputs(path, seed):
    g = torch.Generator().manual_seed(seed + 1)
    B, L = path.x_t.shape
    rates = torch.nn.functional.softplus(torch.randn(B, L, 3, generator=g)).requires_grad_()
    ins_full = torch.randn(B, L, V, generator=g, dtype=torch.float64).float().requires_grad_()
    sub_full = torch.randn(B, L, V, generator=g).requires_grad_()
    return rates, ins_full, sub_full


def cubic_weight(t: float, max_weight: float | None) -> float:
    """w(t) = kappa' / (1 - kappa) for kappa = t^3, written out, with the loss's clamp."""
    w = 3 * t**2 / (1 - t**3)
    return w if max_weight is None else min(w, max_weight)


@given(
    st.integers(0, 10**6),
    st.sampled_from(["x1_length", "batch_tokens", "none"]),
    st.sampled_from([None, 20.0, 2.5]),
)
@settings(max_examples=60, deadline=None)
def test_loss_matches_reference(seed, normalize, max_weight):
    path = _random_path(seed)
    rates, ins_full, sub_full = _model_outputs(path, seed)
    B, L = path.x_t.shape
    out = EditFlowOutput(
        rates=rates,
        ins_logits=ins_full.flatten(0, 1)[path.ins_rows],
        sub_logits=sub_full.flatten(0, 1)[path.sub_rows],
    )
    sched = make_scheduler("cubic")
    got = edit_flow_loss(out, path, sched, normalize=normalize, max_weight=max_weight)
    w = [cubic_weight(float(t), max_weight) for t in path.t.double()]
    per_row, outflows, edits, lens = [], [], [], []
    for b in range(B):
        sel = path.edit_batch == b
        e = list(
            zip(
                path.edit_op[sel].tolist(),
                path.edit_pos[sel].tolist(),
                path.edit_token[sel].tolist(),
            )
        )
        n = int(path.attention_mask[b].sum())
        tl = int(path.target_len[b])
        loss_b, outflow_b, edit_b = loss_reference(
            rates[b].detach(),
            ins_full[b].detach(),
            sub_full[b].detach(),
            n,
            int(path.frozen[b]),
            float(w[b]),
            e,
            tl,
        )
        per_row.append(loss_b * max(tl, 1))
        outflows.append(outflow_b)
        edits.append(edit_b)
        lens.append(max(tl, 1))
    if normalize == "x1_length":
        want = sum(r / n for r, n in zip(per_row, lens)) / B
        want_out = sum(o / n for o, n in zip(outflows, lens)) / B
    elif normalize == "batch_tokens":
        want = sum(per_row) / sum(lens)
        want_out = sum(outflows) / sum(lens)
    else:
        want = sum(per_row) / B
        want_out = sum(outflows) / B
    assert got.loss.item() == pytest.approx(want, rel=1e-5, abs=1e-5)
    assert got.outflow.item() == pytest.approx(want_out, rel=1e-5, abs=1e-5)
    assert (got.outflow - got.edit).item() == pytest.approx(got.loss.item(), rel=1e-5, abs=1e-5)
    counts = torch.bincount(path.edit_op, minlength=3).tolist()
    assert [got.n_ins, got.n_del, got.n_sub] == counts
    got.loss.backward()
    assert torch.isfinite(rates.grad).all()
    for p in (ins_full, sub_full):  # no grad when the draw has no edit of that kind
        assert p.grad is None or torch.isfinite(p.grad).all()


def test_gradient_reaches_only_allowed_rates():
    path = _random_path(3, B=3)
    rates, ins_full, sub_full = _model_outputs(path, 3)
    out = EditFlowOutput(
        rates, ins_full.flatten(0, 1)[path.ins_rows], sub_full.flatten(0, 1)[path.sub_rows]
    )
    edit_flow_loss(out, path, make_scheduler("cubic")).loss.backward()
    assert (rates.grad[~path.rate_mask] == 0).all()
    assert (rates.grad[path.rate_mask] != 0).any()


def test_loss_rejects_logits_at_every_position():
    path = _random_path(5)
    rates, ins_full, sub_full = _model_outputs(path, 5)
    if len(path.ins_rows) == ins_full.shape[0] * ins_full.shape[1]:
        pytest.skip("degenerate draw")
    with pytest.raises(ValueError, match="ins_logits must be"):
        edit_flow_loss(
            EditFlowOutput(rates, ins_full.flatten(0, 1), sub_full.flatten(0, 1)[path.sub_rows]),
            path,
            make_scheduler("cubic"),
        )


@pytest.mark.parametrize(
    "normalize,optimum", [("batch_tokens", 2.0), ("none", 2.0), ("x1_length", 1.5)]
)
def test_loss_minimiser_is_the_expected_number_of_pending_insertions(normalize, optimum):
    """x0 = [BOS]; x1 = [BOS, a] or [BOS, a, a, a] with probability 1/2 each; at t = 0 every
    row's x_t is [BOS] and its single gap holds n = 1 or 3 pending insertions. The true rate
    is E[n] = 2; dividing each row by its own length moves the optimum to 1 / E[1/n] = 1.5."""
    a = 5
    x1s = [[1, a]] * 100 + [[1, a, a, a]] * 100
    batch = align_batch([[1]] * 200, x1s, coupling="noise")
    path = sample_path(batch, make_scheduler("linear"), torch.zeros(200))
    assert path.x_t.shape == (200, 1)
    logits = torch.full((len(path.ins_rows), V), -20.0)
    logits[:, a] = 20.0  # Q is exact, so only the rate matters

    def loss(lam: float) -> float:
        rates = torch.zeros(200, 1, 3)
        rates[..., 0] = lam
        out = EditFlowOutput(rates, logits, torch.zeros(0, V))
        return float(edit_flow_loss(out, path, make_scheduler("linear"), normalize=normalize).loss)

    lo, hi = 0.5, 4.0  # golden-section search: the loss is convex in lam
    r = (5**0.5 - 1) / 2
    for _ in range(60):
        m1, m2 = hi - r * (hi - lo), lo + r * (hi - lo)
        lo, hi = (lo, m2) if loss(m1) < loss(m2) else (m1, hi)
    assert (lo + hi) / 2 == pytest.approx(optimum, abs=1e-3)
