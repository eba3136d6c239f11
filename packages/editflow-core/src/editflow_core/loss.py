"""The Edit Flow training loss (METHOD.md section 3, paper eq. 23).

For one row with remaining edits e at time t, with w = w(t):

    L = w * sum_{i, c allowed} lam_hat[i, c]                       (outflow term)
        - w * sum_e log rate_e                                    (edit term)

    rate_e = lam_ins[p] * Q_ins[p](b)   insertion of b after position p
             lam_del[p]                 deletion of position p
             lam_sub[p] * Q_sub[p](b)   substitution of position p by b

"allowed" is ``PathSample.rate_mask`` (no rates at padding or inside the frozen prefix). The
constant -w log w per edit is dropped. Q is needed only at the rows that hold an edit: the
model returns logits at ``path.ins_rows`` / ``path.sub_rows`` only, and log Q(b) is taken as
``logit[b] - logsumexp(logits)`` so no log-softmax copy of the logits is kept.

Normalisation (``normalize``):
- ``"x1_length"``: each row's loss divided by its number of non-frozen x1 tokens, then
  averaged over the batch (the paper's per-length normalisation).
- ``"batch_tokens"``: the batch's summed loss divided by its total non-frozen x1 tokens.
- ``"none"``: each row's summed loss, averaged over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from .path import PathSample
from .protocol import DEL, INS, SUB, EditFlowOutput
from .scheduler import Scheduler

Normalize = Literal["x1_length", "batch_tokens", "none"]
_LOG_EPS = 1e-12


@dataclass
class LossOutput:
    """The loss and its parts, for logging.

    Attributes:
        loss: scalar, the normalised total ``outflow - edit``; the one to backpropagate.
        outflow: scalar, the normalised outflow term (detached).
        edit: scalar, the normalised edit term w * sum log rate_e (detached).
        n_ins, n_del, n_sub: numbers of remaining edits of each type in the batch.
    """

    loss: torch.Tensor
    outflow: torch.Tensor
    edit: torch.Tensor
    n_ins: int
    n_del: int
    n_sub: int


def _token_log_prob(logits: torch.Tensor, rows: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """log softmax(logits[rows])[tokens] without a (R, V) log-softmax copy.

    logits: (R, V); rows, tokens: (E,) long -> (E,) float32.
    """
    lse = torch.logsumexp(logits.float(), dim=-1)  # (R,)
    return logits[rows, tokens].float() - lse[rows]


def edit_flow_loss(
    output: EditFlowOutput,
    path: PathSample,
    scheduler: Scheduler,
    normalize: Normalize = "x1_length",
) -> LossOutput:
    """Compute the Edit Flow loss from a model's output on ``path.x_t``.

    Args:
        output: ``rates`` (B, L, 3) at every position; ``ins_logits`` (R_ins, V) at
            ``path.ins_rows``; ``sub_logits`` (R_sub, V) at ``path.sub_rows``.
        path: the sampled path (targets, masks, t).
        scheduler: gives w(t) (with its clamp).
        normalize: see the module docstring.

    Returns:
        ``LossOutput``.
    """
    rates, B = output.rates, path.x_t.shape[0]
    if rates.shape != (*path.x_t.shape, 3):
        raise ValueError(
            f"rates must be (B, L, 3) = {(*path.x_t.shape, 3)}, got {tuple(rates.shape)}"
        )
    for name, logits, rows in (
        ("ins", output.ins_logits, path.ins_rows),
        ("sub", output.sub_logits, path.sub_rows),
    ):
        if logits.dim() != 2 or logits.shape[0] != rows.shape[0]:
            raise ValueError(
                f"{name}_logits must be (R, V) at the {rows.shape[0]} {name}_rows, got {tuple(logits.shape)}"
            )
    device = rates.device
    w = scheduler.weight(path.t.to(device)).float()  # (B,)
    rates_f = rates.float()
    outflow = (rates_f * path.rate_mask.to(device)).sum(dim=(1, 2)) * w  # (B,)

    eb, pos, op = path.edit_batch.to(device), path.edit_pos.to(device), path.edit_op.to(device)
    log_rate = torch.log(rates_f[eb, pos, op].clamp_min(_LOG_EPS))  # (E,)
    token, row = path.edit_token.to(device), path.edit_row.to(device)
    log_q = torch.zeros_like(log_rate)
    for code, logits in ((INS, output.ins_logits), (SUB, output.sub_logits)):
        sel = op == code
        if sel.any():
            log_q[sel] = _token_log_prob(logits, row[sel], token[sel])
    edit = torch.zeros(B, device=device).index_add(0, eb, (log_rate + log_q) * w[eb])  # (B,)

    per_row = outflow - edit
    tokens = path.target_len.to(device).float().clamp_min(1.0)
    if normalize == "x1_length":
        scale = 1.0 / (tokens * B)
    elif normalize == "batch_tokens":
        scale = torch.full_like(tokens, 1.0 / float(tokens.sum()))
    elif normalize == "none":
        scale = torch.full_like(tokens, 1.0 / B)
    else:
        raise ValueError(
            f"normalize must be 'x1_length', 'batch_tokens' or 'none', got {normalize!r}"
        )
    counts = torch.bincount(path.edit_op, minlength=3).tolist()
    return LossOutput(
        loss=(per_row * scale).sum(),
        outflow=(outflow * scale).sum().detach(),
        edit=(edit * scale).sum().detach(),
        n_ins=counts[INS],
        n_del=counts[DEL],
        n_sub=counts[SUB],
    )
