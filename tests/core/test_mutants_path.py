"""Path sampling details from path.py's docstrings: times, counts, inputs, errors."""

from __future__ import annotations

import math

import pytest
import torch
from editflow_core import AlignedBatch, align_batch, make_scheduler, sample_path, sample_time
from editflow_core.alignment import BLANK
from editflow_core.model_protocol import DEL, INS, SUB


def test_sample_time_is_uniform_below_one_minus_eps():
    n = 20000
    t = sample_time(n, generator=torch.Generator().manual_seed(0))
    assert t.shape == (n,) and t.dtype == torch.float32
    assert t.min() >= 0 and t.max() < 1 - 1e-3 and t.max() > 1 - 2e-3  # default t_eps = 1e-3
    assert t.double().mean().item() == pytest.approx((1 - 1e-3) / 2, abs=4 * 0.29 / math.sqrt(n))
    t = sample_time(n, 0.25, torch.Generator().manual_seed(1))
    assert t.max() < 0.75 and t.max() > 0.74
    assert t.double().mean().item() == pytest.approx(0.375, abs=4 * 0.75 * 0.29 / math.sqrt(n))
    # the generator is used: same seed, same times; another seed, other times
    a = sample_time(5, generator=torch.Generator().manual_seed(7))
    b = sample_time(5, generator=torch.Generator().manual_seed(7))
    c = sample_time(5, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_path_without_t_draws_it_from_the_generator_below_one_minus_eps():
    batch = align_batch([[1, 2, 3]] * 400, [[1, 4, 5, 6]] * 400, coupling="optimal")
    sched = make_scheduler("linear")
    p = sample_path(batch, sched, t_eps=0.5, generator=torch.Generator().manual_seed(3))
    q = sample_path(batch, sched, t_eps=0.5, generator=torch.Generator().manual_seed(3))
    assert p.t.max() < 0.5 and p.t.min() >= 0 and p.t.max() > 0.45
    assert torch.equal(p.t, q.t) and torch.equal(p.x_t, q.x_t)


def test_edit_counts_and_model_inputs():
    z0 = torch.tensor([[1, BLANK, 4, 5, 8], [1, 2, 7, BLANK, BLANK]])
    z1 = torch.tensor([[1, 6, 4, BLANK, 9], [1, 2, 9, 3, BLANK]])
    batch = AlignedBatch(z0, z1, torch.tensor([1, 2]))
    path = sample_path(batch, make_scheduler("cubic"), torch.tensor([0.2, 0.9]),
                       kappa=torch.zeros(2, 5), pad_token_id=0)  # fmt: skip
    assert path.edit_counts() == {"ins": 2, "del": 1, "sub": 2}
    assert sorted(path.edit_op.tolist()) == sorted([INS, SUB, DEL, SUB, INS])
    inputs = path.model_inputs()
    assert set(inputs) == {"input_ids", "attention_mask", "t", "ins_rows", "sub_rows"}
    assert inputs["input_ids"] is path.x_t and inputs["attention_mask"] is path.attention_mask
    assert inputs["t"] is path.t and inputs["ins_rows"] is path.ins_rows
    assert inputs["sub_rows"] is path.sub_rows
    assert path.t.tolist() == pytest.approx([0.2, 0.9])
    assert path.frozen.tolist() == [1, 2]
    assert path.target_len.tolist() == [3, 2]  # x1 tokens after the frozen prefix


def test_x_t_padding_and_positions():
    z0 = torch.tensor([[1, BLANK, BLANK, 4], [1, 2, 3, 4]])
    z1 = torch.tensor([[1, 5, 6, 4], [1, 2, 3, 4]])
    batch = AlignedBatch(z0, z1, torch.tensor([1, 1]))
    path = sample_path(batch, make_scheduler("linear"), torch.tensor([0.5, 0.5]),
                       kappa=torch.zeros(2, 4), pad_token_id=77)  # fmt: skip
    assert path.x_t.tolist() == [[1, 4, 77, 77], [1, 2, 3, 4]]
    assert path.attention_mask.tolist() == [[True, True, False, False], [True] * 4]
    assert path.x_t.dtype == torch.long
    # both insertions go after x_t position 0; one token row holds them
    assert path.edit_pos.tolist() == [0, 0] and path.edit_token.tolist() == [5, 6]
    assert path.ins_rows.tolist() == [0] and path.edit_row.tolist() == [0, 0]
    # kappa = 1 everywhere: x_t = x1 and nothing remains
    done = sample_path(batch, make_scheduler("linear"), torch.tensor([0.5, 0.5]),
                       kappa=torch.ones(2, 4))  # fmt: skip
    assert done.x_t.tolist() == [[1, 5, 6, 4], [1, 2, 3, 4]] and len(done.edit_op) == 0
    assert done.edit_counts() == {"ins": 0, "del": 0, "sub": 0}


def test_deletions_have_no_token_row():
    z0 = torch.tensor([[1, 3, 4, 5]])
    z1 = torch.tensor([[1, BLANK, 6, BLANK]])
    path = sample_path(AlignedBatch(z0, z1, torch.tensor([1])), make_scheduler("linear"),
                       torch.tensor([0.1]), kappa=torch.zeros(1, 4))  # fmt: skip
    assert path.edit_op.tolist() == [DEL, SUB, DEL]
    assert path.edit_pos.tolist() == [1, 2, 3]
    assert path.edit_row.tolist() == [-1, 0, -1]
    assert path.edit_token.tolist() == [BLANK, 6, BLANK]
    assert path.sub_rows.tolist() == [2] and path.ins_rows.tolist() == []


def test_path_argument_errors():
    sched = make_scheduler("linear")
    bad = AlignedBatch(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long),
                       torch.tensor([1, 1]))  # fmt: skip
    with pytest.raises(ValueError) as err:
        sample_path(bad, sched)
    assert str(err.value) == "z0 and z1 must be (B, K) of one shape, got (2, 3) and (2, 4)"
    flat = AlignedBatch(torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.long),
                        torch.tensor([1]))  # fmt: skip
    with pytest.raises(ValueError, match="must be \\(B, K\\)"):
        sample_path(flat, sched)
    no_anchor = AlignedBatch(torch.ones(2, 2, dtype=torch.long), torch.ones(2, 2, dtype=torch.long),
                             torch.tensor([1, 0]))  # fmt: skip
    with pytest.raises(ValueError) as err:
        sample_path(no_anchor, sched)
    assert str(err.value) == "every row needs at least one frozen column (the anchor)"
