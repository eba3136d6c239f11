"""The interface between editflow-core and a network.

The loss and the sampler talk to a model through one small callable; they never import
transformers. A model is anything with this signature:

    model(input_ids, attention_mask, t, ins_rows=None, sub_rows=None) -> EditFlowOutput

- ``input_ids``: (B, L) long, right-padded; position 0 of every row is the anchor (BOS).
- ``attention_mask``: (B, L) bool or long, 1 on real tokens.
- ``t``: (B,) float, the CTMC time of each row. Models that are not time conditioned ignore it.
- ``ins_rows`` / ``sub_rows``: optional (N,) long *flat* indices ``b * L + i`` into the (B, L)
  grid. When given, the model computes token logits only at those rows (training: the rows
  holding a remaining insertion / substitution), so no (B, L, V) tensor is materialised.
  When ``None``, it returns logits for every position (sampling).

Design choice: flat indices rather than (batch, position) pairs, so a model gathers its
hidden states with one ``hidden.flatten(0, 1)[rows]`` and the index survives any
``**inputs`` plumbing (HF Trainer, DeepSpeed) as a single tensor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

#: Order of the three rate channels in ``EditFlowOutput.rates``.
INS, DEL, SUB = 0, 1, 2


@dataclass
class EditFlowOutput:
    """What a model returns.

    Attributes:
        rates: (B, L, 3) float, non-negative normalised rates lam_hat for (ins, del, sub) at
            every position. The CTMC intensity is ``w(t) * rates`` (METHOD.md section 1).
        ins_logits: (B, L, V), or (N_ins, V) when ``ins_rows`` was given: logits of Q_ins, the
            token inserted right after position i.
        sub_logits: (B, L, V), or (N_sub, V) when ``sub_rows`` was given: logits of Q_sub, the
            token that replaces position i.
    """

    rates: torch.Tensor
    ins_logits: torch.Tensor
    sub_logits: torch.Tensor


class EditFlowModel(Protocol):
    """The callable protocol of an Edit Flow network (see the module docstring)."""

    def __call__(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        t: torch.Tensor,
        ins_rows: torch.Tensor | None = None,
        sub_rows: torch.Tensor | None = None,
    ) -> EditFlowOutput: ...
