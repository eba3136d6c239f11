"""One tau-leaping step as pure tensor functions (METHOD.md section 7).

At position i with step size h, schedule weight w(t) and normalised rates lam[i]:

    ins[i] fires          with probability 1 - exp(-h w lam_ins[i])
    del or sub fires      with probability 1 - exp(-h w (lam_del[i] + lam_sub[i]))
    it is a deletion      with probability lam_del[i] / (lam_del[i] + lam_sub[i])

A position can get both an insertion after it and a deletion or substitution of itself. All
fired edits apply at once, left to right. The sampler (``BatchSampler``) draws the uniforms,
the tokens and keeps the books; these functions hold the arithmetic, so tests can check it
against a slow reference.
"""

from __future__ import annotations

import torch

from .protocol import DEL, INS, SUB
from .sampler_types import EditOp


def fire_edits(
    lam: torch.Tensor, scale: torch.Tensor, u: torch.Tensor, room: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Decide which edits fire in one step.

    Args:
        lam: (B, L, 3) float rates (ins, del, sub), zero where no edit is allowed.
        scale: (B, 1) float, h * w(t) of each row.
        u: (>= 3, B, L) uniforms: fire-ins, fire-del/sub, del-vs-sub.
        room: (B,) long, how many tokens each row may still gain net of its deletions' slots:
            cap - current length. The rightmost insertions beyond ``room + deletions`` are
            dropped (the length cap).

    Returns:
        (ins, dele, sub, capped): (B, L) bool each, and (B,) bool, rows that lost insertions.
    """
    ins = u[0] < -torch.expm1(-scale * lam[..., INS])  # (B, L)
    ds_rate = lam[..., DEL] + lam[..., SUB]
    ds = u[1] < -torch.expm1(-scale * ds_rate)
    dele = ds & (u[2] * ds_rate < lam[..., DEL])
    sub = ds & ~dele
    over = ins & (ins.long().cumsum(1) > (room + dele.sum(1))[:, None])
    return ins & ~over, dele, sub, over.any(1)


def apply_edits(
    ids: torch.Tensor,
    lengths: torch.Tensor,
    ins: torch.Tensor,
    dele: torch.Tensor,
    ins_tokens: torch.Tensor,
    pad_token_id: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply insertions and deletions to a padded batch (substitutions already written in ids).

    Args:
        ids: (B, L) long, the tokens after substitution. lengths: (B,) long.
        ins, dele: (B, L) bool, fired insertions (after position i) and deletions (of i).
        ins_tokens: (B, L) long, the token inserted after i where ``ins``.

    Returns:
        (new_ids, new_lengths): (B, L') long right-padded with ``pad_token_id``, (B,) long.
    """
    B, L = ids.shape
    keep = (torch.arange(L, device=ids.device)[None] < lengths[:, None]) & ~dele
    width = keep.long() + ins.long()  # tokens each position emits: (B, L)
    start = width.cumsum(1) - width  # where they go
    new_len = width.sum(1)
    out = ids.new_full((B, max(int(new_len.max()), 1)), pad_token_id)
    kb, ki = keep.nonzero(as_tuple=True)
    out[kb, start[kb, ki]] = ids[kb, ki]
    ib, ii = ins.nonzero(as_tuple=True)
    out[ib, start[ib, ii] + keep[ib, ii].long()] = ins_tokens[ib, ii]
    return out, new_len


def row_edits(
    old: list[int],
    new: list[int],
    added: list[int],
    ins: list[bool],
    dele: list[bool],
    sub: list[bool],
) -> list[EditOp]:
    """One row's fired edits as ``EditOp`` values, left to right (positions before the step).

    old / new: the row's tokens before and after substitution; added[i]: the token inserted
    after i. At one position a deletion or substitution comes before the insertion after it.
    """
    ops: list[EditOp] = []
    for i, (d, s, n) in enumerate(zip(dele, sub, ins)):
        if d:
            ops.append(EditOp("del", i, None, old[i]))
        elif s:
            ops.append(EditOp("sub", i, new[i], old[i]))
        if n:
            ops.append(EditOp("ins", i, added[i], None))
    return ops
