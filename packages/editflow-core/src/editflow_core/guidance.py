"""Classifier-free guidance for the sampler (the paper's "naive-rate" rule).

A row with guidance scale g > 0 and a prompt (frozen prefix f > 1: anchor + prompt) is run twice
in one batched forward: as it is (conditional) and without its prompt, i.e. the anchor followed by
the tokens after the prompt (unconditional; what a model trained with ``cond_drop`` has seen).
Position i >= f - 1 of the conditional row is position i - (f - 1) of the unconditional one (the
gap after the prompt is the gap after the anchor). There, per operation,

    lam~ = lam_c^(1 + g) * lam_u^(-g)
    log Q~ = (1 + g) log Q_c - g log Q_u        (renormalised when a token is drawn)

and positions inside the prompt keep the conditional values (no edit is allowed there). g = 0
never reaches this module: the sampler runs the plain forward, so it gives today's samples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .model_protocol import RatesFirst
from .spans import prefix_layout

#: floor of the unconditional rate in lam_u^(-g): a vanishing lam_u would make lam~ explode
RATE_FLOOR = 1e-6

Run = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], RatesFirst]


def unconditional_rows(
    ids: torch.Tensor,
    mask: torch.Tensor,
    given: torch.Tensor,
    frozen: Sequence[int],
    pad_token_id: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The rows without their prompts: anchor + the tokens after the prefix.

    A suffix or other given span after the prompt stays, and stays given.

    Args:
        ids: (G, W) long, the conditional rows.
        mask: (G, W), 1 on their real tokens.
        given: (G, W) bool, their given tokens.
        frozen: their G prefix lengths (>= 2).
        pad_token_id: the id written into the padding.

    Returns:
        (G, W) ids, mask and given flags, right-padded (never longer than the conditional rows).
    """
    G, W = ids.shape
    out = torch.full((G, W), pad_token_id, dtype=ids.dtype, device=ids.device)
    out_mask = torch.zeros((G, W), dtype=mask.dtype, device=mask.device)
    out_given = torch.zeros((G, W), dtype=torch.bool, device=ids.device)
    for k, (f, n) in enumerate(zip(frozen, mask.sum(1).tolist())):
        out[k, 0] = ids[k, 0]
        out[k, 1 : n - f + 1] = ids[k, f:n]
        out_mask[k, : n - f + 1] = True
        out_given[k, 0] = True
        out_given[k, 1 : n - f + 1] = given[k, f:n]
    return out, out_mask, out_given


def guided_forward(
    run: Run,
    ids: torch.Tensor,
    mask: torch.Tensor,
    t: torch.Tensor,
    frozen: Sequence[int],
    scales: Sequence[float],
    pad_token_id: int,
    given: torch.Tensor | None = None,
) -> RatesFirst:
    """One batched forward of the rows and the unconditional copies of the guided ones.

    Args:
        run: ``(ids, mask, t, given) -> RatesFirst`` for a batch (given: (B, W) bool, for a
            model that reads which tokens are given).
        ids: (B, W) long, the rows.
        mask: (B, W), 1 on real tokens.
        t: (B,) float, each row's time.
        frozen: B prefix lengths.
        scales: B guidance scales; rows with scale > 0 and frozen > 1 are guided.
        pad_token_id: the id written into the padding of the unconditional copies.
        given: (B, W) bool, the rows' given tokens (default: the first ``frozen`` of each).

    Returns:
        ``RatesFirst`` of the B rows with the guided rates and token distributions.
    """
    B, W = ids.shape
    guided = [b for b in range(B) if scales[b] > 0 and frozen[b] > 1]
    dev = ids.device
    g_idx = torch.tensor(guided, dtype=torch.long, device=dev)
    if given is None:
        given, _ = prefix_layout(torch.tensor(list(frozen), dtype=torch.long, device=dev), W)
    uids, umask, ugiven = unconditional_rows(
        ids[g_idx], mask[g_idx], given[g_idx], [frozen[b] for b in guided], pad_token_id
    )
    out = run(
        torch.cat([ids, uids]),
        torch.cat([mask, umask]),
        torch.cat([t, t[g_idx]]),
        torch.cat([given, ugiven]),
    )

    shift = torch.zeros(B, dtype=torch.long, device=dev)
    shift[g_idx] = torch.tensor([frozen[b] - 1 for b in guided], dtype=torch.long, device=dev)
    scale = torch.zeros(B, dtype=torch.float32, device=dev)
    scale[g_idx] = torch.tensor([float(scales[b]) for b in guided], device=dev)
    slot = torch.full((B,), -1, dtype=torch.long, device=dev)  # unconditional row of each row
    slot[g_idx] = torch.arange(len(guided), device=dev) + B

    pos = torch.arange(W, device=dev)[None].expand(B, W)
    upos = pos - shift[:, None]  # position in the unconditional row
    paired = (slot[:, None] >= 0) & (upos >= 0) & mask.bool()  # (B, W)
    rates = out.rates[:B].float()
    u_rates = out.rates[slot.clamp_min(0)[:, None], upos.clamp_min(0)].float()  # (B, W, 3)
    g = scale[:, None, None]
    log_mix = (1 + g) * torch.log(rates.clamp_min(RATE_FLOOR)) - g * torch.log(
        u_rates.clamp_min(RATE_FLOOR)
    )
    mixed = torch.where(rates > 0, log_mix.exp(), torch.zeros_like(rates))
    guided_rates = torch.where(paired[..., None], mixed, rates)

    def token_logits(ins_rows: torch.Tensor, sub_rows: torch.Tensor):
        """Token logits at the asked rows: guided where the row is guided, else as given.

        At guided positions (1 + g) log Q_c - g log Q_u, the unconditional partner read from the
        same head; elsewhere the conditional logits as the model gives them.
        """
        asks = []
        for rows in (ins_rows, sub_rows):
            b, i = rows // W, rows % W
            pair = paired[b, i]
            asks.append((rows, b, pair, (slot[b] * W + upos[b, i])[pair]))
        heads = out.token_logits(*(torch.cat([rows, u_rows]) for rows, _, _, u_rows in asks))
        results = []
        for logits, (rows, b, pair, u_rows) in zip(heads, asks):
            n = len(rows)
            cond = logits[:n].float().clone()
            if len(u_rows):
                gs = scale[b[pair]][:, None]
                c = torch.log_softmax(cond[pair], -1)
                u = torch.log_softmax(logits[n:].float(), -1)
                cond[pair] = (1 + gs) * c - gs * u
            results.append(cond)
        return results[0], results[1]

    return RatesFirst(guided_rates, token_logits)
