"""The loss on a case worked by hand from loss.py's docstring, and its argument checks."""

from __future__ import annotations

import math

import pytest
import torch
from editflow_core import (
    AlignedBatch,
    EditFlowOutput,
    edit_flow_loss,
    make_scheduler,
    sample_path,
)
from editflow_core.alignment import BLANK


def _two_row_path():
    """Row 0: x_t = [1, 4], x1 = [1, 5, 4, 6]: insert 5 after 0, insert 6 after 1 (frozen 1).
    Row 1: x_t = [1, 2, 7, 8], x1 = [1, 2, 9]: frozen 2, substitute 7 -> 9 at 2, delete 3.
    kappa = 0 on every non-frozen column: nothing has switched, t = 0.5 (linear: w = 2)."""
    z0 = torch.tensor([[1, BLANK, 4, BLANK], [1, 2, 7, 8]])
    z1 = torch.tensor([[1, 5, 4, 6], [1, 2, 9, BLANK]])
    batch = AlignedBatch(z0, z1, torch.tensor([1, 2]))
    kappa = torch.zeros(2, 4)
    path = sample_path(batch, make_scheduler("linear"), torch.tensor([0.5, 0.5]), kappa=kappa)
    assert path.x_t.tolist() == [[1, 4, 0, 0], [1, 2, 7, 8]]
    return path


def _output(path, V=10):
    B, L = path.x_t.shape
    rates = torch.tensor(
        [
            [[0.5, 0.1, 0.2], [1.5, 0.3, 0.4], [9.0, 9.0, 9.0], [9.0, 9.0, 9.0]],  # padding: 9s
            [[0.7, 0.8, 0.9], [0.25, 0.6, 0.2], [0.1, 0.3, 0.6], [0.2, 0.9, 0.05]],
        ]
    )
    g = torch.Generator().manual_seed(0)
    ins = torch.randn(len(path.ins_rows), V, generator=g)
    sub = torch.randn(len(path.sub_rows), V, generator=g)
    return EditFlowOutput(rates, ins, sub)


def _log_softmax(row: list[float], k: int) -> float:
    return row[k] - math.log(sum(math.exp(x) for x in row))


def test_loss_worked_by_hand():
    path = _two_row_path()
    out = _output(path)
    r = out.rates.tolist()
    # token rows: flat b * L + i, sorted: insertions at (0, 0) and (0, 1); substitution at (1, 2)
    assert path.ins_rows.tolist() == [0, 1] and path.sub_rows.tolist() == [6]
    ins, sub = out.ins_logits.tolist(), out.sub_logits.tolist()
    w = 1 / (1 - 0.5)  # linear: kappa' / (1 - kappa)
    # outflow: row 0 frozen 1: ins from 0 on, del / sub from 1 on, 2 real tokens
    out0 = r[0][0][0] + r[0][1][0] + r[0][1][1] + r[0][1][2]
    # row 1 frozen 2: ins from position 1 on, del / sub from 2 on, 4 real tokens
    out1 = sum(r[1][i][0] for i in (1, 2, 3)) + sum(r[1][i][c] for i in (2, 3) for c in (1, 2))
    # row 0: insert 5 after 0 (ins row 0), insert 6 after 1 (ins row 1)
    edit0 = math.log(r[0][0][0]) + _log_softmax(ins[0], 5)
    edit0 += math.log(r[0][1][0]) + _log_softmax(ins[1], 6)
    # row 1: substitute position 2 by 9 (sub row 0), delete position 3
    edit1 = math.log(r[1][2][2]) + _log_softmax(sub[0], 9) + math.log(r[1][3][1])
    # x1 tokens after the frozen prefix: row 0 has 3, row 1 has 1
    per_row = [w * (out0 - edit0), w * (out1 - edit1)]
    outflows, edits = [w * out0, w * out1], [w * edit0, w * edit1]
    cases = {
        "batch_tokens": (sum(per_row) / 4, sum(outflows) / 4, sum(edits) / 4),
        "none": (sum(per_row) / 2, sum(outflows) / 2, sum(edits) / 2),
        "x1_length": (
            (per_row[0] / 3 + per_row[1] / 1) / 2,
            (outflows[0] / 3 + outflows[1] / 1) / 2,
            (edits[0] / 3 + edits[1] / 1) / 2,
        ),
    }
    for normalize, (loss, outflow, edit) in cases.items():
        got = edit_flow_loss(out, path, make_scheduler("linear"), normalize=normalize)
        assert got.loss.item() == pytest.approx(loss, rel=1e-5), normalize
        assert got.outflow.item() == pytest.approx(outflow, rel=1e-5), normalize
        assert got.edit.item() == pytest.approx(edit, rel=1e-5), normalize
        assert (got.n_ins, got.n_del, got.n_sub) == (2, 1, 1)


def test_max_weight_clamps_w_and_must_be_positive():
    path = _two_row_path()
    out = _output(path)
    sched = make_scheduler("linear")  # w(0.5) = 2
    full = edit_flow_loss(out, path, sched, max_weight=None).loss.item()
    assert edit_flow_loss(out, path, sched, max_weight=2.5).loss.item() == pytest.approx(full)
    assert edit_flow_loss(out, path, sched, max_weight=0.5).loss.item() == pytest.approx(full / 4)
    for bad in (0, 0.0, -1.0):
        with pytest.raises(ValueError) as err:
            edit_flow_loss(out, path, sched, max_weight=bad)
        assert str(err.value) == f"max_weight must be positive or None, got {bad!r}"


def test_shape_and_normalize_errors_give_the_exact_message():
    path = _two_row_path()
    out = _output(path)
    sched = make_scheduler("linear")
    bad = EditFlowOutput(out.rates[..., :2], out.ins_logits, out.sub_logits)
    with pytest.raises(ValueError) as err:
        edit_flow_loss(bad, path, sched)
    assert str(err.value) == "rates must be (B, L, 3) = (2, 4, 3), got (2, 4, 2)"
    bad = EditFlowOutput(out.rates, out.ins_logits, torch.zeros(3, 10))
    with pytest.raises(ValueError) as err:
        edit_flow_loss(bad, path, sched)
    assert str(err.value) == "sub_logits must be (R, V) at the 1 sub_rows, got (3, 10)"
    bad = EditFlowOutput(out.rates, torch.zeros(2, 10, 1), out.sub_logits)
    with pytest.raises(ValueError) as err:
        edit_flow_loss(bad, path, sched)
    assert str(err.value) == "ins_logits must be (R, V) at the 2 ins_rows, got (2, 10, 1)"
    with pytest.raises(ValueError) as err:
        edit_flow_loss(out, path, sched, normalize="mean")
    assert str(err.value) == ("normalize must be 'batch_tokens', 'none' or 'x1_length', got 'mean'")


def test_a_zero_rate_at_a_pending_edit_gives_a_large_finite_loss():
    """log rate is taken at max(rate, 1e-12): a model sure there is no edit where one is
    pending pays -log(1e-12) per such edit, not inf."""
    path = _two_row_path()
    out = _output(path)
    rates = out.rates.clone()
    rates[1, 3, 1] = 0.0  # the pending deletion of row 1
    got = edit_flow_loss(EditFlowOutput(rates, out.ins_logits, out.sub_logits), path,
                         make_scheduler("linear"), normalize="none")  # fmt: skip
    ref = edit_flow_loss(out, path, make_scheduler("linear"), normalize="none")
    diff = got.loss.item() - ref.loss.item()
    # w = 2, halved by "none" over B = 2; the outflow loses 0.9 * 2 / 2
    want = (-math.log(1e-12) + math.log(0.9)) - 0.9
    assert diff == pytest.approx(want, rel=1e-4)
