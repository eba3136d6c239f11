"""The Edit Flow training loss (paper eq. 23).

For one row with remaining edits e at time t, with w = w(t):

    L = w * sum_{i, c allowed} lam_hat[i, c]                       (outflow term)
        - w * sum_e f_e log rate_e                                (edit term)

    rate_e = lam_ins[p] * Q_ins[p](b)   insertion of b after position p
             lam_del[p]                 deletion of position p
             lam_sub[p] * Q_sub[p](b)   substitution of position p by b

f_e is ``PathSample.edit_weight``: 1 on plain paths; on localized paths h_e / w(t), the edit's
hazard over w (``editflow_core.localized``), so w * f_e = h_e and the minimiser becomes
E[sum of h_e / w over a slot's pending edits]. The clamp below scales the outflow and edit
terms alike (f_e is never clamped), which leaves that minimiser unchanged.

"allowed" is ``PathSample.rate_mask`` (no rates at padding or inside the frozen prefix). Its
minimiser over lam_hat is the expected number of pending edits at each slot given x_t and t
(plain paths).
Terms that do not depend on the model (-w per pending edit) are dropped, and w(t) is clamped at
``max_weight`` (t near 1 would otherwise dominate the gradient), so this is a training objective,
not a likelihood bound: ``editflow_core.likelihood`` restores both. Q is needed only at the
rows that hold an edit: the model returns logits at ``path.ins_rows`` / ``path.sub_rows`` only,
and log Q(b) is taken as ``logit[b] - logsumexp(logits)`` so no log-softmax copy of the logits
is kept.

Normalisation (``normalize``):
- ``"batch_tokens"`` (default): the batch's summed loss divided by its total non-frozen x1
  tokens. Every row has the same weight, so the minimiser stays the true expected count
  E[n | x_t, t] (up to O(1/B) from the batch total's own randomness).
- ``"none"``: each row's summed loss, averaged over the batch (unbiased; scale grows with length).
- ``"x1_length"``: each row's loss divided by its own number of non-frozen x1 tokens, then
  averaged (the reference implementation's choice). Biased: where len(x1) is uncertain given
  x_t, the minimiser becomes E[n / len] / E[1 / len] instead of E[n], so rates lean towards
  short targets. Example: x0 = [BOS], x1 = [BOS, a] or [BOS, a, a, a] with probability 1/2 each:
  the loss-optimal insertion rate at t = 0 is 1.5 instead of the true 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from .model_protocol import DEL, INS, SUB, EditFlowOutput
from .path import PathSample
from .scheduler import Scheduler

Normalize = Literal["batch_tokens", "none", "x1_length"]
DEFAULT_MAX_WEIGHT = 20.0
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
    """The log-probabilities log softmax(logits[rows])[tokens], without a (R, V) copy.

    logits: (R, V); rows, tokens: (E,) long -> (E,) float32.
    """
    lse = torch.logsumexp(logits.float(), dim=-1)  # (R,)
    return logits[rows, tokens].float() - lse[rows]


def row_scale(
    path: PathSample,
    normalize: Normalize,
    batch_totals: tuple[int, float] | None,
    device: torch.device,
) -> torch.Tensor:
    """The (B,) factor of each row's summed loss under ``normalize`` (see the module docstring).

    ``batch_totals`` (rows, scored tokens) are the whole batch's when ``path`` is one group of it.
    """
    tokens = path.target_len.to(device).float().clamp_min(1.0)
    B = path.x_t.shape[0]
    rows_total, tokens_total = (B, float(tokens.sum())) if batch_totals is None else batch_totals
    if normalize == "x1_length":
        return 1.0 / (tokens * rows_total)
    if normalize == "batch_tokens":
        return torch.full_like(tokens, 1.0 / tokens_total)
    if normalize == "none":
        return torch.full_like(tokens, 1.0 / rows_total)
    raise ValueError(f"normalize must be 'batch_tokens', 'none' or 'x1_length', got {normalize!r}")


def edit_flow_loss(
    output: EditFlowOutput,
    path: PathSample,
    scheduler: Scheduler,
    normalize: Normalize = "batch_tokens",
    max_weight: float | None = DEFAULT_MAX_WEIGHT,
    batch_totals: tuple[int, float] | None = None,
) -> LossOutput:
    """Compute the Edit Flow loss from a model's output on ``path.x_t``.

    Args:
        output: ``rates`` (B, L, 3) at every position; ``ins_logits`` (R_ins, V) at
            ``path.ins_rows``; ``sub_logits`` (R_sub, V) at ``path.sub_rows``.
        path: the sampled path (targets, masks, t).
        scheduler: gives w(t).
        normalize: see the module docstring.
        max_weight: clamp on w(t) (the reference implementation's 20); ``None``: no clamp.
        batch_totals: (rows, scored tokens) of the whole batch when ``path`` is one group of it
            (``editflow_core.ragged``): the normalisers then are the batch's, and the groups'
            losses sum to the batch loss. Default: this path's own (``path_totals``).

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
                f"{name}_logits must be (R, V) at the {rows.shape[0]} {name}_rows, "
                f"got {tuple(logits.shape)}"
            )
    if max_weight is not None and not max_weight > 0:
        raise ValueError(f"max_weight must be positive or None, got {max_weight!r}")
    device = rates.device
    w = scheduler.weight(path.t.to(device).double())  # (B,)
    w = (w.clamp(max=max_weight) if max_weight is not None else w).float()
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
    factor = path.edit_weight.to(device).float()  # (E,), 1 on plain paths
    edit = torch.zeros(B, device=device).index_add(0, eb, (log_rate + log_q) * w[eb] * factor)

    per_row = outflow - edit
    scale = row_scale(path, normalize, batch_totals, device)  # (B,)
    counts = torch.bincount(path.edit_op, minlength=3).tolist()
    return LossOutput(
        loss=(per_row * scale).sum(),
        outflow=(outflow * scale).sum().detach(),
        edit=(edit * scale).sum().detach(),
        n_ins=counts[INS],
        n_del=counts[DEL],
        n_sub=counts[SUB],
    )


def reverse_flow_loss(
    reverse_rates: torch.Tensor,
    path: PathSample,
    scheduler: Scheduler,
    normalize: Normalize = "batch_tokens",
    max_weight: float | None = DEFAULT_MAX_WEIGHT,
    batch_totals: tuple[int, float] | None = None,
) -> torch.Tensor:
    """The same Bregman loss run backward in time, for reverse rates (self-correction).

    For one row, with w_rev = kappa'(t) / kappa(t) (clamped at ``max_weight``; it diverges at
    t = 0) and mu the (B, L, 3) reverse rates:

        L_rev = w_rev * sum_{i, c allowed} mu[i, c] - w_rev * sum_{switched e} log mu_e

    The switched columns are ``path.rev_*``; their tokens (x0's: a mask, a uniform draw) need no
    model, so there is no token term. Its minimiser is E[#switched columns at each slot | x_t, t],
    the rate at which the path, run backward, undoes them. Same normalisation as
    ``edit_flow_loss``.

    Returns:
        The scalar loss.
    """
    B = path.x_t.shape[0]
    if reverse_rates.shape != (*path.x_t.shape, 3):
        raise ValueError(
            f"reverse_rates must be (B, L, 3) = {(*path.x_t.shape, 3)}, "
            f"got {tuple(reverse_rates.shape)}"
        )
    device = reverse_rates.device
    w = scheduler.reverse_weight(path.t.to(device).double())
    w = (w.clamp(max=max_weight) if max_weight is not None else w).float()  # (B,)
    mu = reverse_rates.float()
    outflow = (mu * path.rate_mask.to(device)).sum(dim=(1, 2)) * w  # (B,)
    rb, rp, ro = (x.to(device) for x in (path.rev_batch, path.rev_pos, path.rev_op))
    log_mu = torch.log(mu[rb, rp, ro].clamp_min(_LOG_EPS))
    edit = torch.zeros(B, device=device).index_add(0, rb, log_mu * w[rb])
    scale = row_scale(path, normalize, batch_totals, device)  # (B,)
    return ((outflow - edit) * scale).sum()
