"""The base class of the architecture families, and what conversion reads from a source.

An ``Architecture`` knows how to build its backbone and token-head shape from a text config
(loading a checkpoint, building from scratch) and how to read a source checkpoint's weights
(conversion). Each family lives in its own small file (``bert.py``, ``decoder.py``, ...);
``architectures.py`` lists them, and every table of family names is derived from that list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from transformers import PreTrainedConfig

from editflow_models.heads import TokenHead
from editflow_models.special_tokens import anchor_token_id


@dataclass
class SourceWeights:
    """What conversion copies from a source checkpoint.

    Attributes:
        text_config: the backbone config the Edit Flow model will carry.
        backbone: state dict with keys relative to ``EditFlowModel.backbone``.
        head: state dict with keys relative to a ``TokenHead`` (``transform.*``, ``decoder.*``):
            the source LM / MLM head, including its transform.
        dtype: the source's parameter dtype (the converted model keeps it).
        token_ids: anchor / mask / pad ids read from the source config (``None`` if absent).
        source: a short description of what was read (class or file format), for the report.
    """

    text_config: PreTrainedConfig
    backbone: dict[str, torch.Tensor]
    head: dict[str, torch.Tensor]
    dtype: torch.dtype
    token_ids: dict[str, int | None] = field(default_factory=dict)
    source: str = ""


def config_token_ids(config: PreTrainedConfig) -> dict[str, int | None]:
    """Anchor (BOS, else CLS), mask and pad ids as a source config states them."""
    return {
        "anchor_token_id": anchor_token_id(config),
        "mask_token_id": getattr(config, "mask_token_id", None),
        "pad_token_id": getattr(config, "pad_token_id", None),
    }


class Architecture:
    """Base class: a family of backbones (one subclass per file).

    Class attributes:
        name: the ``EditFlowConfig.arch`` value.
        config_class: the backbone's transformers config class; its ``model_type`` is the one
            the Edit Flow config's ``text_config`` carries (LLaDA: llama, Dream: qwen2).
        source_model_type: the ``model_type`` in the config.json of the checkpoints this family
            converts (``None``: the same as ``name``).
        causal_source: its source checkpoints are causal LMs, which ``a2d`` saves in their
            bidirectional form.
        shifted: the backbone predicts token i from the state at i - 1 (Dream).
        mask_made_bidirectional: a causal decoder made bidirectional through its mask (a2d);
            attention kernels that ignore the mask's shape (flash attention) are refused.
    """

    name: str = ""
    source_model_type: str | None = None
    causal_source: bool = False
    shifted: bool = False
    mask_made_bidirectional: bool = False
    config_class: type[PreTrainedConfig]
    #: family-specific fields of a from-scratch config (on top of the sizes)
    scratch_extras: dict = {}

    def scratch_text_config(
        self,
        *,
        vocab_size: int,
        hidden_size: int,
        num_layers: int,
        num_heads: int,
        intermediate_size: int,
        max_position_embeddings: int,
        pad_token_id: int | None,
        **overrides,
    ) -> PreTrainedConfig:
        """A fresh text config of this family with the given sizes (``overrides`` win)."""
        fields = dict(
            vocab_size=vocab_size,
            hidden_size=hidden_size,
            num_hidden_layers=num_layers,
            num_attention_heads=num_heads,
            intermediate_size=intermediate_size,
            max_position_embeddings=max_position_embeddings,
            pad_token_id=pad_token_id,
        )
        return self.config_class(**(fields | self.scratch_extras | overrides))

    def build_backbone(self, text_config: PreTrainedConfig) -> nn.Module:
        """The backbone module: (B, L) ids -> (B, L, H) last hidden state after the final norm."""
        raise NotImplementedError

    def build_token_head(self, text_config: PreTrainedConfig) -> TokenHead:
        """An (uninitialised) token head with the source LM head's structure."""
        raise NotImplementedError

    def load_source(self, path: Path) -> SourceWeights:
        """Read a local source checkpoint directory."""
        raise NotImplementedError

    def position_ids(
        self, attention_mask: torch.Tensor, text_config: PreTrainedConfig
    ) -> torch.Tensor:
        """The (B, L) position of each token, counted over real tokens only.

        So outputs do not depend on the padding side; padding positions get 0.
        """
        return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)

    def hidden_states(
        self,
        backbone: nn.Module,
        input_ids: torch.Tensor | None,
        inputs_embeds: torch.Tensor | None,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
    ) -> torch.Tensor:
        """Run the backbone; returns the (B, L, H) last hidden state."""
        return backbone(
            input_ids=input_ids,
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
        ).last_hidden_state


def prefixed(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of ``state`` under ``prefix``, with the prefix removed."""
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
