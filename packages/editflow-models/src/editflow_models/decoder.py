"""Causal decoders made bidirectional: the Qwen2, Qwen3 and Llama families.

In transformers 5 these decoders build their attention mask through ``create_causal_mask``,
which falls back to a padding-only bidirectional mask when ``config.is_causal`` is False; the
sdpa, eager and flex kernels then follow the mask. Flash attention ignores the mask's shape and
takes causality from a per-layer flag hard-coded to True, so it would silently stay causal: it is
refused with an error (``check_bidirectional_attention``).

The backbone is the ``*Model`` (its last state is after the final RMSNorm); both token heads copy
``lm_head`` (a single Linear; the input embedding when the source ties them).
"""

from __future__ import annotations

from pathlib import Path

from torch import nn
from transformers import (
    AutoModel,
    AutoModelForCausalLM,
    LlamaConfig,
    PreTrainedConfig,
    Qwen2Config,
    Qwen3Config,
)

from editflow_models.architecture_base import (
    Architecture,
    SourceWeights,
    config_token_ids,
    prefixed,
)
from editflow_models.heads import TokenHead


def check_bidirectional_attention(text_config: PreTrainedConfig) -> None:
    """Raise ValueError if ``text_config`` asks for an attention kernel that stays causal."""
    impl = text_config._attn_implementation or ""
    if "flash" in impl:
        raise ValueError(
            f"attn_implementation={impl!r} ignores the bidirectional mask and would keep this "
            f"{text_config.model_type} backbone causal; use 'sdpa' (default), 'eager' or "
            "'flex_attention'"
        )


class DecoderArch(Architecture):
    """A causal decoder LM whose mask is made bidirectional (``is_causal=False``)."""

    name = "llama"
    config_class: type[PreTrainedConfig] = LlamaConfig
    mask_made_bidirectional = True
    causal_source = True

    scratch_extras = dict(bos_token_id=None, eos_token_id=None, tie_word_embeddings=False)

    def scratch_text_config(self, *, hidden_size: int, num_heads: int, **kw) -> PreTrainedConfig:
        """The base config with full multi-head attention, made bidirectional."""
        heads = {"num_key_value_heads": num_heads, "head_dim": hidden_size // num_heads}
        config = super().scratch_text_config(
            hidden_size=hidden_size, num_heads=num_heads, **(heads | kw)
        )
        config.is_causal = False
        return config

    def build_backbone(self, text_config: PreTrainedConfig) -> nn.Module:
        """The ``*Model`` decoder with ``is_causal`` off (a flash attention kernel is refused)."""
        text_config.is_causal = False
        check_bidirectional_attention(text_config)
        return AutoModel.from_config(text_config)

    def build_token_head(self, text_config: PreTrainedConfig) -> TokenHead:
        """A single bias-free Linear, like ``lm_head``."""
        return TokenHead(nn.Identity(), text_config.hidden_size, text_config.vocab_size, bias=False)

    def load_source(self, path: Path) -> SourceWeights:
        """The decoder and ``lm_head`` (the input embedding when tied) of a ``*ForCausalLM``."""
        lm = AutoModelForCausalLM.from_pretrained(path, dtype="auto")
        state = lm.state_dict()
        lm.config.is_causal = False
        return SourceWeights(
            text_config=lm.config,
            backbone=prefixed(state, "model."),
            head={"decoder.weight": lm.get_output_embeddings().weight},
            dtype=lm.dtype,
            token_ids=config_token_ids(lm.config),
            source=type(lm).__name__,
        )


class Qwen2Arch(DecoderArch):
    """Qwen2 / Qwen2.5 decoders."""

    name = "qwen2"
    config_class = Qwen2Config


class Qwen3Arch(DecoderArch):
    """Qwen3 (dense) decoders."""

    name = "qwen3"
    config_class = Qwen3Config
