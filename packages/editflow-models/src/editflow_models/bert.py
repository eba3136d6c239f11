"""BERT-family masked LMs: BERT, RoBERTa and XLM-RoBERTa.

The backbone is the encoder without its pooler (its last state is after the last layer's
LayerNorm); the token heads copy the MLM head: BERT's ``cls.predictions`` (transform:
dense, activation, LayerNorm; decoder with the separate output bias), RoBERTa's ``lm_head``
(dense, GELU, layer_norm; decoder + bias). These encoders are bidirectional as shipped.

RoBERTa counts positions from ``padding_idx + 1``; ``position_ids`` reproduces that over real
tokens only, so outputs do not depend on the padding side.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers import (
    AutoModelForMaskedLM,
    BertConfig,
    BertModel,
    PreTrainedConfig,
    RobertaConfig,
    RobertaModel,
    XLMRobertaConfig,
    XLMRobertaModel,
)
from transformers.activations import GELUActivation
from transformers.models.bert.modeling_bert import BertPredictionHeadTransform

from editflow_models.architecture_base import (
    Architecture,
    SourceWeights,
    config_token_ids,
    prefixed,
)
from editflow_models.heads import TokenHead


class BertArch(Architecture):
    """BERT masked LMs (``BertForMaskedLM``)."""

    name = "bert"
    config_class: type[PreTrainedConfig] = BertConfig
    model_class: type[nn.Module] = BertModel
    prefix = "bert."

    def build_backbone(self, text_config: PreTrainedConfig) -> nn.Module:
        """The encoder without its pooler."""
        return self.model_class(text_config, add_pooling_layer=False)

    def build_token_head(self, text_config: PreTrainedConfig) -> TokenHead:
        """BERT's MLM head: transform (dense, activation, LayerNorm), decoder with bias."""
        transform = BertPredictionHeadTransform(text_config)
        return TokenHead(transform, text_config.hidden_size, text_config.vocab_size, bias=True)

    def head_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The MLM head of a ``BertForMaskedLM`` state dict, in ``TokenHead`` keys."""
        head = {
            f"transform.{k}": v for k, v in prefixed(state, "cls.predictions.transform.").items()
        }
        head["decoder.weight"] = state["cls.predictions.decoder.weight"]
        head["decoder.bias"] = state["cls.predictions.bias"]
        return head

    def load_source(self, path: Path) -> SourceWeights:
        """The encoder (pooler dropped) and MLM head of a ``*ForMaskedLM`` checkpoint."""
        mlm = AutoModelForMaskedLM.from_pretrained(path, dtype="auto")
        state = mlm.state_dict()
        backbone = {
            k: v for k, v in prefixed(state, self.prefix).items() if not k.startswith("pooler.")
        }
        return SourceWeights(
            text_config=mlm.config,
            backbone=backbone,
            head=self.head_state(state),
            dtype=mlm.dtype,
            token_ids=config_token_ids(mlm.config),
            source=type(mlm).__name__,
        )


class RobertaArch(BertArch):
    """RoBERTa masked LMs (``RobertaForMaskedLM``)."""

    name = "roberta"
    config_class = RobertaConfig
    model_class = RobertaModel
    prefix = "roberta."

    def build_token_head(self, text_config: PreTrainedConfig) -> TokenHead:
        """RoBERTa's LM head: dense -> GELU -> LayerNorm -> decoder (+ bias)."""
        transform = nn.Sequential(
            nn.Linear(text_config.hidden_size, text_config.hidden_size),
            GELUActivation(),
            nn.LayerNorm(text_config.hidden_size, eps=text_config.layer_norm_eps),
        )
        return TokenHead(transform, text_config.hidden_size, text_config.vocab_size, bias=True)

    def head_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The ``lm_head`` of a ``RobertaForMaskedLM`` state dict, in ``TokenHead`` keys."""
        return {
            "transform.0.weight": state["lm_head.dense.weight"],
            "transform.0.bias": state["lm_head.dense.bias"],
            "transform.2.weight": state["lm_head.layer_norm.weight"],
            "transform.2.bias": state["lm_head.layer_norm.bias"],
            "decoder.weight": state["lm_head.decoder.weight"],
            "decoder.bias": state["lm_head.bias"],
        }

    def position_ids(
        self, attention_mask: torch.Tensor, text_config: PreTrainedConfig
    ) -> torch.Tensor:
        """RoBERTa's positions: real tokens at padding_idx + 1, + 2, ...; padding at padding_idx."""
        mask = attention_mask.long()
        return mask.cumsum(-1) * mask + text_config.pad_token_id


class XLMRobertaArch(RobertaArch):
    """XLM-RoBERTa masked LMs (same layout as RoBERTa)."""

    name = "xlm-roberta"
    config_class = XLMRobertaConfig
    model_class = XLMRobertaModel
