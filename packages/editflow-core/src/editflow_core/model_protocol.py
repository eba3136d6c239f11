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

Sampling only needs token logits where an edit fires, which it knows only after it has the
rates. A model may therefore also implement ``forward_rates(input_ids, attention_mask, t) ->
RatesFirst``: the rates now, and a function that computes token logits at chosen rows from the
same forward. ``BatchSampler`` uses it when present (``RatesFirstModel``), which saves the two
(B, L, V) logit tensors per step; any plain model works too.

Design choice: flat indices rather than (batch, position) pairs, so a model gathers its
hidden states with one ``hidden.flatten(0, 1)[rows]`` and the index survives any
``**inputs`` plumbing (HF Trainer, DeepSpeed) as a single tensor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

#: Order of the three rate channels in ``EditFlowOutput.rates``.
INS, DEL, SUB = 0, 1, 2


@dataclass
class EditFlowOutput:
    """What a model returns.

    Attributes:
        rates: (B, L, 3) float, non-negative normalised rates lam_hat for (ins, del, sub) at
            every position. The CTMC intensity is ``w(t) * rates``.
        ins_logits: (B, L, V), or (N_ins, V) when ``ins_rows`` was given: logits of Q_ins, the
            token inserted right after position i.
        sub_logits: (B, L, V), or (N_sub, V) when ``sub_rows`` was given: logits of Q_sub, the
            token that replaces position i.
        reverse_rates: (B, L, 3) or None: a model with reverse rates (self-correction) also
            gives, per position, the normalised rates of undoing an edit backward in time:
            re-inserting an x0 token after i, deleting an inserted token i, substituting i back
            to its x0 token (weight kappa' / kappa instead of kappa' / (1 - kappa)).
    """

    rates: torch.Tensor
    ins_logits: torch.Tensor
    sub_logits: torch.Tensor
    reverse_rates: torch.Tensor | None = None


class RateModel(Protocol):
    """The callable protocol of an Edit Flow network (see the module docstring).

    ``editflow_models.EditFlowModel`` (the Hugging Face class) is one; the tests' oracles are
    others.
    """

    def __call__(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        t: torch.Tensor,
        ins_rows: torch.Tensor | None = None,
        sub_rows: torch.Tensor | None = None,
    ) -> EditFlowOutput:
        """Rates at every position and token logits at every position or at the given rows."""
        ...


@dataclass
class RatesFirst:
    """One forward pass for sampling: rates now, token logits on demand.

    Attributes:
        rates: (B, L, 3) float, as in ``EditFlowOutput``.
        token_logits: ``(ins_rows, sub_rows) -> (ins_logits, sub_logits)``, flat row indices
            ``b * L + i`` (N_ins,), (N_sub,) -> logits (N_ins, V), (N_sub, V) from the same forward.
        reverse_rates: (B, L, 3) or None, as in ``EditFlowOutput``.
    """

    rates: torch.Tensor
    token_logits: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
    reverse_rates: torch.Tensor | None = None

    @classmethod
    def from_output(cls, out: EditFlowOutput) -> RatesFirst:
        """Wrap a full-logits output (every position) of a plain model."""

        def token_logits(ins_rows: torch.Tensor, sub_rows: torch.Tensor):
            return out.ins_logits.flatten(0, 1)[ins_rows], out.sub_logits.flatten(0, 1)[sub_rows]

        return cls(out.rates, token_logits, out.reverse_rates)


@runtime_checkable
class RatesFirstModel(Protocol):
    """A model that can defer its token heads to the rows a sampler picks."""

    def forward_rates(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, t: torch.Tensor
    ) -> RatesFirst:
        """One forward: the (B, L, 3) rates now, the token logits of chosen rows on demand."""
        ...
