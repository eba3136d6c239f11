"""The modules an Edit Flow model adds on top of a backbone's last hidden state.

- ``TokenHead``: hidden (..., H) -> logits (..., V). Holds the source LM / MLM head *including*
  its transform (BERT's dense-act-LayerNorm, ModernBERT's dense-act-norm, nothing for decoder LMs),
  so a converted model's token distributions start equal to the source's.
- ``TimeEmbedding``: t (B,) -> (B, H), added to every input embedding when the model is time
  conditioned. Its last Linear starts at zero, so switching time conditioning on leaves a
  converted model's outputs unchanged at step 0.

The rate head is a plain ``nn.Linear(H, 3)`` followed by softplus in the model's forward.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class TokenHead(nn.Module):
    """A vocabulary head: ``decoder(transform(h))``.

    Args:
        transform: the source head's transform ((..., H) -> (..., H)); ``nn.Identity()`` for
            decoder LMs whose LM head is a single Linear.
        hidden_size: H.
        vocab_size: V.
        bias: whether the decoder Linear has a bias (BERT, RoBERTa, ModernBERT: yes).
    """

    def __init__(self, transform: nn.Module, hidden_size: int, vocab_size: int, bias: bool) -> None:
        super().__init__()
        self.transform = transform
        self.decoder = nn.Linear(hidden_size, vocab_size, bias=bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden: (..., H) -> logits (..., V)."""
        return self.decoder(self.transform(hidden))


class TimeEmbedding(nn.Module):
    """Sinusoidal features of t followed by Linear-SiLU-Linear; t (B,) float -> (B, H).

    The features are ``[cos(1000 t f_k), sin(1000 t f_k)]`` with geometric frequencies f_k
    (the usual diffusion-model embedding, t scaled so that [0, 1] spans many periods).
    """

    def __init__(self, hidden_size: int, num_features: int = 256) -> None:
        super().__init__()
        self.num_features = num_features
        self.mlp = nn.Sequential(
            nn.Linear(num_features, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size)
        )
        self.mlp[2].zero_init = True  # read by EditFlowModel._init_weights

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """t: (B,) float in [0, 1] -> (B, H) in the MLP's dtype."""
        half = self.num_features // 2
        freqs = torch.exp(
            -math.log(10_000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half
        )
        angles = 1000.0 * t.float()[:, None] * freqs[None, :]  # (B, F/2)
        features = torch.cat([angles.cos(), angles.sin()], dim=-1)  # (B, F)
        return self.mlp(features.to(self.mlp[0].weight.dtype))
