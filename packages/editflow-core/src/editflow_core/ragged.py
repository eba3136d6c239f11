"""Ragged batches: one training batch as a few forwards over rows of similar x_t length.

The length of x_t varies with t from row to row (x0 = empty, kappa = t^3: a quarter of x1 on
average), but a padded batch is as long as its longest row. ``split_by_length`` sorts the rows
by length and cuts them into groups, each padded only to its own longest row and at most
``max_tokens`` padded tokens (rows x longest row); the cuts minimise

    sum over groups (rows_g * longest_g) + forward_cost * number of groups

by dynamic programming over the sorted lengths (O(B^2), B the rows of one batch). Works for every
backbone: a group is an ordinary padded batch. ``select_rows`` builds one group.

Exactness: the loss of a group, normalised with the whole batch's totals
(``edit_flow_loss(..., batch_totals=path_totals(path))``), is the sum of its rows' terms of the
batch loss, and a model's output on a row does not depend on the other rows or on padding; so the
groups' losses sum to the batch loss, and their gradients to its gradient.
"""

from __future__ import annotations

import torch

from .model_protocol import INS, SUB
from .path import PathSample


def path_totals(path: PathSample) -> tuple[int, float]:
    """(rows, scored x1 tokens) of a batch: the normalisers of ``edit_flow_loss``."""
    return path.x_t.shape[0], float(path.target_len.float().clamp_min(1.0).sum())


def _renumber(flat: torch.Tensor, new_row: torch.Tensor, L: int, Lg: int):
    """Flat indices b * L + i -> b' * Lg + i for the rows kept; (kept mask, new flat)."""
    b, i = flat // L, flat % L
    keep = new_row[b] >= 0
    return keep, new_row[b[keep]] * Lg + i[keep]


def select_rows(path: PathSample, rows: torch.Tensor) -> PathSample:
    """The sub-batch of ``rows`` ((G,) long, ascending), trimmed to its longest row.

    Token rows (``ins_rows``, ``sub_rows``: flat ``b * L + i``) and the edits' pointers into them
    are renumbered; everything else is indexed by row.
    """
    B, L = path.x_t.shape
    lengths = path.attention_mask.sum(1)
    Lg = int(lengths[rows].max()) if len(rows) else 0
    new_row = torch.full((B,), -1, dtype=torch.long)
    new_row[rows] = torch.arange(len(rows))

    ins_keep, ins_rows = _renumber(path.ins_rows, new_row, L, Lg)
    sub_keep, sub_rows = _renumber(path.sub_rows, new_row, L, Lg)
    # index of each kept token row among the kept ones (-1 where dropped)
    ins_index = torch.cumsum(ins_keep.long(), 0) - 1
    sub_index = torch.cumsum(sub_keep.long(), 0) - 1

    edits = new_row[path.edit_batch] >= 0
    op, old = path.edit_op[edits], path.edit_row[edits]
    safe = old.clamp_min(0)  # deletions point nowhere (-1)
    edit_row = torch.full_like(old, -1)
    if len(ins_index):
        edit_row = torch.where(op == INS, ins_index[safe.clamp_max(len(ins_index) - 1)], edit_row)
    if len(sub_index):
        edit_row = torch.where(op == SUB, sub_index[safe.clamp_max(len(sub_index) - 1)], edit_row)
    rev = new_row[path.rev_batch] >= 0
    return PathSample(
        x_t=path.x_t[rows, :Lg],
        attention_mask=path.attention_mask[rows, :Lg],
        t=path.t[rows],
        frozen=path.frozen[rows],
        rate_mask=path.rate_mask[rows, :Lg],
        ins_rows=ins_rows,
        sub_rows=sub_rows,
        edit_batch=new_row[path.edit_batch[edits]],
        edit_pos=path.edit_pos[edits],
        edit_op=op,
        edit_token=path.edit_token[edits],
        edit_row=edit_row,
        target_len=path.target_len[rows],
        given_mask=path.given_mask[rows, :Lg],
        open_mask=path.open_mask[rows, :Lg],
        rev_batch=new_row[path.rev_batch[rev]],
        rev_pos=path.rev_pos[rev],
        rev_op=path.rev_op[rev],
        edit_weight=path.edit_weight[edits],
    )


def group_rows(lengths: list[int], max_tokens: int, forward_cost: float) -> list[list[int]]:
    """Rows (indices into ``lengths``) grouped by length; see the module docstring.

    A row longer than ``max_tokens`` forms a group of its own.
    """
    order = sorted(range(len(lengths)), key=lambda r: lengths[r])
    sizes = [lengths[r] for r in order]
    n = len(order)
    best = [0.0] + [float("inf")] * n  # best[j]: cost of the first j sorted rows
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        longest = sizes[j - 1]
        for i in range(j, 0, -1):  # group = sorted rows i-1 .. j-1
            padded = (j - i + 1) * longest
            if padded > max_tokens and i < j:
                break
            cost = best[i - 1] + padded + forward_cost
            if cost < best[j]:
                best[j], cut[j] = cost, i - 1
    groups, j = [], n
    while j > 0:
        groups.append(sorted(order[cut[j] : j]))
        j = cut[j]
    return groups[::-1]


def default_forward_cost(max_tokens: int) -> float:
    """The fixed cost of one forward, in padded tokens: a sixteenth of a full group."""
    return max_tokens / 16


def split_by_length(
    path: PathSample, max_tokens: int, forward_cost: float | None = None
) -> list[PathSample]:
    """``path`` as groups of rows of similar x_t length (see the module docstring).

    Args:
        path: the batch's path.
        max_tokens: most padded tokens (rows x longest row) in one group.
        forward_cost: the fixed cost of one forward, in padded tokens (default
            ``default_forward_cost``).

    Returns:
        The groups, shortest rows first; their rows cover the batch once.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    cost = default_forward_cost(max_tokens) if forward_cost is None else forward_cost
    lengths = path.attention_mask.sum(1).tolist()
    return [
        select_rows(path, torch.tensor(g, dtype=torch.long))
        for g in group_rows(lengths, max_tokens, cost)
    ]
