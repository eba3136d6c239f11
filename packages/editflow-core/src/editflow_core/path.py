"""Sampling the training path z_t and its remaining edits.

Given aligned (z0, z1) columns and a time t per row, each column independently takes z1's
value with probability kappa(t), else z0's: that is z_t, and x_t = strip_blanks(z_t). Every
column with z_t[j] != z1[j] is a remaining edit. With p = the number of tokens of z_t before
column j (an exclusive cumsum over the non-blank mask):

    z_t[j] == BLANK   -> insertion of z1[j] after x_t position p - 1
    z1[j]  == BLANK   -> deletion of x_t position p
    otherwise         -> substitution of x_t position p by z1[j]

Everything is tensor ops over the padded (B, K) batch; no Python loop over rows or columns.

Token rows. Several insertions often target the same gap (at small t most of a long x1 is
inserted into a few gaps), so the path lists the *unique* (row, position) pairs that hold an
insertion (``ins_rows``) or a substitution (``sub_rows``), and each edit points at its row. A
model computes token logits at those rows only: (R, V) instead of (B, L, V) per head.

Localized paths (paper appendix C.1, ``editflow_core.localized``): with ``lam_prop`` > 0 a
switched column also switches its neighbours at rate ``lam_prop`` each; the path then draws
every column's switch time (``sample_switch_times``) and weights each remaining edit by
h_e / w(t) (``PathSample.edit_weight``). ``kappa`` may also be given per column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .alignment import BLANK, AlignedBatch
from .localized import edit_hazard_factors, localized_sites, sample_switch_times
from .model_protocol import DEL, INS, SUB
from .scheduler import Scheduler
from .spans import prefix_layout, rate_mask


@dataclass
class PathSample:
    """One draw of the path for a batch.

    Attributes:
        x_t: (B, L) long, right-padded with ``pad_token_id``.
        attention_mask: (B, L) bool, True on real tokens.
        t: (B,) float, the time of each row.
        frozen: (B,) long, the number of leading given tokens of each row (anchor + prompt).
        given_mask, open_mask: (B, L) bool, the layout of x_t (``editflow_core.spans``): the
            given tokens (the prefix, and any frozen span after it) and the given tokens after
            which a hole starts.
        rate_mask: (B, L, 3) bool, the rates that take part in the outflow term
            (``spans.rate_mask``): none at padding, no deletion or substitution of a given
            token, insertions only inside holes (after a free or an open token).
        ins_rows, sub_rows: (R_ins,), (R_sub,) long, sorted unique flat indices ``b * L + i`` of
            the positions that hold a remaining insertion / substitution.
        edit_batch, edit_pos, edit_op, edit_token: (E,) long, the remaining edits: row, x_t
            position, type (INS / DEL / SUB) and target token (BLANK for deletions).
        edit_row: (E,) long, index of each edit's position in ``ins_rows`` (insertions) or
            ``sub_rows`` (substitutions); -1 for deletions.
        target_len: (B,) long, the number of x1 tokens that are not given (for normalisation).
        rev_batch, rev_pos, rev_op: (E_r,) long, the switched columns, as the edits that undo
            them backward in time (reverse rates): INS after x_t position p (a deleted x0 token
            comes back), DEL of position p (an inserted token goes), SUB of position p (back to
            its x0 token). Their tokens are x0's, known from the x0 distribution.
        edit_weight: (E,) float, the factor of each edit's log-rate term in the loss: 1 on
            plain paths, h_e / w(t) >= 1 on localized paths (``editflow_core.localized``).
    """

    x_t: torch.Tensor
    attention_mask: torch.Tensor
    t: torch.Tensor
    frozen: torch.Tensor
    rate_mask: torch.Tensor
    ins_rows: torch.Tensor
    sub_rows: torch.Tensor
    edit_batch: torch.Tensor
    edit_pos: torch.Tensor
    edit_op: torch.Tensor
    edit_token: torch.Tensor
    edit_row: torch.Tensor
    target_len: torch.Tensor
    given_mask: torch.Tensor | None = None
    open_mask: torch.Tensor | None = None
    rev_batch: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))
    rev_pos: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))
    rev_op: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))
    edit_weight: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.edit_weight is None:
            self.edit_weight = torch.ones(self.edit_op.shape, device=self.edit_op.device)
        if self.given_mask is None or self.open_mask is None:
            self.given_mask, self.open_mask = prefix_layout(self.frozen, self.x_t.shape[1])

    def model_inputs(self) -> dict[str, torch.Tensor]:
        """The keyword arguments of the model protocol for this batch.

        x_t, its mask, t and the token rows: ``model(**path.model_inputs())``.
        """
        return {
            "input_ids": self.x_t,
            "attention_mask": self.attention_mask,
            "t": self.t,
            "ins_rows": self.ins_rows,
            "sub_rows": self.sub_rows,
        }

    def given(self) -> torch.Tensor:
        """(B, L) bool: the given tokens (prefix and frozen spans), for a model that reads them."""
        return self.given_mask

    def edit_counts(self) -> dict[str, int]:
        """Numbers of remaining insertions, deletions and substitutions in the batch."""
        counts = torch.bincount(self.edit_op, minlength=3).tolist()
        return {"ins": counts[INS], "del": counts[DEL], "sub": counts[SUB]}


def sample_time(
    batch_size: int, t_eps: float = 1e-3, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Draw t ~ U[0, 1 - t_eps] per row: (B,) float. w(t) diverges at 1, hence the epsilon."""
    return torch.rand(batch_size, generator=generator) * (1.0 - t_eps)


def sample_path(
    batch: AlignedBatch,
    scheduler: Scheduler,
    t: torch.Tensor | None = None,
    *,
    t_eps: float = 1e-3,
    kappa: torch.Tensor | None = None,
    lam_prop: float = 0.0,
    pad_token_id: int = 0,
    generator: torch.Generator | None = None,
) -> PathSample:
    """Draw z_t for every row and list the remaining edits.

    Args:
        batch: aligned (z0, z1) columns, (B, K) each, with their layout (given columns never
            switch; the anchor is always given, so every insertion has a position to follow).
        scheduler: gives kappa(t).
        t: (B,) times; drawn from U[0, 1 - t_eps] when ``None``.
        t_eps: keeps drawn times away from 1, where w(t) diverges.
        kappa: optional (B, K) per-column probability of holding z1 (overrides the scheduler,
            for paths of your own).
        lam_prop: > 0: a localized path, switched columns spreading to their neighbours at
            this rate each (``editflow_core.localized``); 0: the plain path.
        pad_token_id: the id written into x_t's padding.
        generator: source of randomness.

    Returns:
        A ``PathSample``.
    """
    z0, z1, frozen, given = batch.z0, batch.z1, batch.frozen, batch.given
    if z0.shape != z1.shape or z0.dim() != 2:
        raise ValueError(
            f"z0 and z1 must be (B, K) of one shape, got {tuple(z0.shape)} and {tuple(z1.shape)}"
        )
    if (frozen < 1).any():
        raise ValueError("every row needs at least one frozen column (the anchor)")
    B, K = z0.shape
    t = sample_time(B, t_eps, generator) if t is None else t.float()
    switch_times = None
    if lam_prop:
        if kappa is not None:
            raise ValueError("sample_path takes a per-column kappa or lam_prop, not both")
        switch_times = sample_switch_times(localized_sites(batch), scheduler, lam_prop, generator)
        kappa = (switch_times <= t.double()[:, None]).float()  # rand < 1 always, < 0 never
    if kappa is None:
        kappa = scheduler.kappa(t)[:, None].expand(B, K)
    take1 = (torch.rand(B, K, generator=generator) < kappa) | given
    zt = torch.where(take1, z1, z0)  # (B, K)

    real = zt != BLANK  # (B, K)
    before = real.cumsum(1) - real.long()  # tokens of z_t before each column
    lengths = real.sum(1)  # (B,)
    L = int(lengths.max())
    x_t = torch.full((B, L), pad_token_id, dtype=torch.long)
    rb, rc = real.nonzero(as_tuple=True)
    x_t[rb, before[rb, rc]] = zt[rb, rc]
    attention_mask = torch.arange(L)[None] < lengths[:, None]  # (B, L)
    given_t = torch.zeros(B, L, dtype=torch.bool)
    open_t = torch.zeros(B, L, dtype=torch.bool)
    given_t[rb, before[rb, rc]] = given[rb, rc]
    open_t[rb, before[rb, rc]] = batch.open[rb, rc]

    eb, ec = (zt != z1).nonzero(as_tuple=True)  # (E,) each, row-major
    is_ins = zt[eb, ec] == BLANK
    is_del = z1[eb, ec] == BLANK
    op = torch.full_like(eb, SUB)
    op[is_ins], op[is_del] = INS, DEL
    pos = before[eb, ec] - is_ins.long()
    flat = eb * L + pos
    ins_rows, ins_inv = torch.unique(flat[is_ins], return_inverse=True)
    is_sub = op == SUB
    sub_rows, sub_inv = torch.unique(flat[is_sub], return_inverse=True)
    row = torch.full_like(eb, -1)
    row[is_ins], row[is_sub] = ins_inv, sub_inv

    target_len = ((z1 != BLANK) & ~given).sum(1)
    # switched columns (z_t = z1 != z0) in the holes, as reverse edits
    rb, rc = ((zt == z1) & (z0 != z1) & ~given).nonzero(as_tuple=True)
    r_ins = z1[rb, rc] == BLANK  # a deleted x0 token: comes back after the token before it
    r_del = z0[rb, rc] == BLANK  # an inserted token: goes
    rev_op = torch.full_like(rb, SUB)
    rev_op[r_ins], rev_op[r_del] = INS, DEL
    rev_pos = before[rb, rc] - r_ins.long()
    return PathSample(
        x_t=x_t,
        attention_mask=attention_mask,
        t=t,
        frozen=frozen,
        rate_mask=rate_mask(attention_mask, given_t, open_t),
        ins_rows=ins_rows,
        sub_rows=sub_rows,
        edit_batch=eb,
        edit_pos=pos,
        edit_op=op,
        edit_token=z1[eb, ec],
        edit_row=row,
        target_len=target_len,
        given_mask=given_t,
        open_mask=open_t,
        rev_batch=rb,
        rev_pos=rev_pos,
        rev_op=rev_op,
        edit_weight=None
        if switch_times is None
        else edit_hazard_factors(batch, switch_times, t, scheduler, lam_prop),
    )
