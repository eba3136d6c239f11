"""ModernBERT: the ``ModernBertModel`` backbone and the masked-LM head as token heads.

The backbone's last state is after ``final_norm``; the token heads copy
``ModernBertForMaskedLM.head`` (dense, activation, norm) and ``.decoder``.

ModernBERT is bidirectional as shipped; nothing about its attention changes.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn
from transformers import ModernBertConfig, ModernBertForMaskedLM, ModernBertModel
from transformers.models.modernbert.modeling_modernbert import ModernBertPredictionHead

from editflow_models.architecture_base import (
    Architecture,
    SourceWeights,
    config_token_ids,
    prefixed,
)
from editflow_models.heads import TokenHead


class ModernBertArch(Architecture):
    """ModernBERT masked LMs (answerdotai/ModernBERT-*, and any ``modernbert`` checkpoint)."""

    name = "modernbert"
    config_class = ModernBertConfig
    scratch_extras = dict(
        bos_token_id=None, eos_token_id=None, cls_token_id=None, sep_token_id=None
    )

    def build_backbone(self, text_config: ModernBertConfig) -> nn.Module:
        """The ``ModernBertModel`` encoder."""
        return ModernBertModel(text_config)

    def build_token_head(self, text_config: ModernBertConfig) -> TokenHead:
        """The masked-LM head's structure: prediction head (dense, activation, norm), decoder."""
        return TokenHead(
            ModernBertPredictionHead(text_config),
            text_config.hidden_size,
            text_config.vocab_size,
            bias=text_config.decoder_bias,
        )

    def load_source(self, path: Path) -> SourceWeights:
        """The encoder and masked-LM head of a ``ModernBertForMaskedLM`` checkpoint."""
        mlm = ModernBertForMaskedLM.from_pretrained(path, dtype="auto")
        state = mlm.state_dict()
        head = {f"transform.{k}": v for k, v in prefixed(state, "head.").items()}
        head |= {f"decoder.{k}": v for k, v in prefixed(state, "decoder.").items()}
        return SourceWeights(
            text_config=mlm.config,
            backbone=prefixed(state, "model."),
            head=head,
            dtype=mlm.dtype,
            token_ids=config_token_ids(mlm.config),
            source="ModernBertForMaskedLM",
        )
