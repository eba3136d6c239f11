"""Drawing tokens from logits with per-row settings (temperature, top-k, top-p, greedy).

The sampler supplies the uniform variates itself (one per row, from that sequence's own
generator) so that a sequence's result does not depend on what else is in the batch. A token
is drawn by inverting the CDF of the filtered distribution, in vocabulary order, at that
uniform; top-k / top-p only mask logits, so a row's draw is the same whatever the other rows
ask for.
"""

from __future__ import annotations

import torch


def sample_tokens(
    logits: torch.Tensor,
    u: torch.Tensor,
    temperature: torch.Tensor,
    top_k: torch.Tensor,
    top_p: torch.Tensor,
) -> torch.Tensor:
    """Draw one token per row.

    Args:
        logits: (N, V) float.
        u: (N,) uniforms in [0, 1).
        temperature: (N,) float; 0 means greedy (argmax).
        top_k: (N,) long; 0 keeps every token.
        top_p: (N,) float in (0, 1]; 1 keeps every token. The most likely token always stays.

    Returns:
        (N,) long token ids.
    """
    if logits.shape[0] == 0:
        return torch.empty(0, dtype=torch.long, device=logits.device)
    logits = logits.float()
    greedy = temperature <= 0
    scaled = logits / torch.where(greedy, torch.ones_like(temperature), temperature)[:, None]
    filt = ((top_k > 0) | (top_p < 1)).nonzero().squeeze(1)
    if len(filt):
        scaled[filt] = _filter(scaled[filt], top_k[filt], top_p[filt])
    probs = torch.softmax(scaled, dim=-1)
    cdf = probs.cumsum(-1)
    idx = torch.searchsorted(cdf, (u.to(cdf.dtype) * cdf[:, -1])[:, None], right=True).squeeze(1)
    idx = idx.clamp_max(cdf.shape[1] - 1)
    return torch.where(greedy, scaled.argmax(-1), idx)


def _filter(scaled: torch.Tensor, top_k: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """Set logits outside the top-k / top-p set to -inf, keeping vocabulary order: (N, V)."""
    ranked, order = torch.sort(scaled, dim=-1, descending=True)  # (N, V)
    rank = torch.arange(scaled.shape[1], device=scaled.device)[None]
    drop = (top_k[:, None] > 0) & (rank >= top_k[:, None])
    probs = torch.softmax(ranked.masked_fill(drop, float("-inf")), dim=-1)
    drop |= ((probs.cumsum(-1) - probs) >= top_p[:, None]) & (rank > 0)
    return scaled.masked_fill(torch.zeros_like(drop).scatter(1, order, drop), float("-inf"))
