"""apply_edits' documented shapes: (B, L) insertion tokens, and a width of max(new length, 1)."""

from __future__ import annotations

import torch
from editflow_core.leap import apply_edits

PAD = 0


def test_apply_edits_takes_one_token_per_position_as_a_2d_tensor():
    ids = torch.tensor([[1, 4, 5], [1, 6, PAD]])
    ins = torch.tensor([[1, 0, 1], [0, 1, 0]])
    dele = torch.tensor([[False, True, False], [False, False, False]])
    tokens = torch.tensor([[7, 0, 8], [0, 9, 0]])
    out, n = apply_edits(ids, torch.tensor([3, 2]), ins, dele, tokens, PAD)
    assert out.tolist() == [[1, 7, 5, 8], [1, 6, 9, PAD]] and n.tolist() == [4, 3]
    same, _ = apply_edits(ids, torch.tensor([3, 2]), ins.bool(), dele, tokens[..., None], PAD)
    assert torch.equal(same, out)


def test_apply_edits_width_is_the_longest_new_row():
    ids = torch.tensor([[1, 4], [1, PAD]])
    dele = torch.tensor([[False, True], [False, False]])
    out, n = apply_edits(ids, torch.tensor([2, 1]), torch.zeros(2, 2, dtype=torch.long), dele,
                         torch.zeros(2, 2, dtype=torch.long), PAD)  # fmt: skip
    assert out.tolist() == [[1], [1]] and n.tolist() == [1, 1]
    # every token deleted: one padding column, lengths 0
    none = torch.zeros(1, 2, dtype=torch.long)
    out, n = apply_edits(ids[:1], torch.tensor([2]), none, torch.tensor([[True, True]]), none, 3)
    assert out.tolist() == [[3]] and n.tolist() == [0]
