"""Dream (Dream-org/Dream-v0-*): a Qwen2.5-initialised mask-diffusion LM.

Dream's modelling code ships with its hub checkpoints (trust_remote_code), but its network is a
Qwen2 decoder with full attention and the same parameter names (``model.embed_tokens``,
``model.layers.i.self_attn.{q,k,v,o}_proj``, ``mlp.{gate,up,down}_proj``, ``model.norm``,
``lm_head``). The backbone here is transformers' own ``Qwen2Model`` with ``is_causal=False``;
conversion reads ``config.json`` and the safetensors directly, so no remote code runs.

Dream keeps the autoregressive shift: the state at i - 1 predicts token i. The Edit Flow heads
follow it: substitution of token i and deletion of token i read the state at i - 1; insertion
after i (the new token i + 1) reads the state at i. Position 0 (the anchor) is never deleted or
substituted and reads its own state.

Tested against a small stand-in module with Dream's structure and parameter names
(tests/models/standins.py), since Dream's code cannot be downloaded here.
"""

from __future__ import annotations

from pathlib import Path

from transformers import Qwen2Config

from editflow_models.architecture_base import SourceWeights, prefixed
from editflow_models.checkpoint import read_json, read_safetensors
from editflow_models.decoder import DecoderArch

_QWEN2_FIELDS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "hidden_act",
    "max_position_embeddings",
    "rms_norm_eps",
    "attention_dropout",
    "initializer_range",
    "tie_word_embeddings",
    "pad_token_id",
    "bos_token_id",
    "eos_token_id",
)


def dream_text_config(raw: dict) -> Qwen2Config:
    """The ``Qwen2Config`` equivalent of a Dream ``config.json`` dict."""
    if raw.get("use_sliding_window"):
        raise ValueError("unsupported Dream config: use_sliding_window=true")
    if raw.get("rope_scaling"):
        raise ValueError(f"unsupported Dream config: rope_scaling={raw['rope_scaling']}")
    fields = {k: raw[k] for k in _QWEN2_FIELDS if k in raw}
    config = Qwen2Config(
        **fields,
        rope_parameters={"rope_type": "default", "rope_theta": raw.get("rope_theta", 10000.0)},
    )
    config.is_causal = False
    return config


class DreamArch(DecoderArch):
    """Dream checkpoints (``model_type: Dream``), carried on a bidirectional ``Qwen2Model``."""

    name = "dream"
    source_model_type = "Dream"
    causal_source = False
    config_class = Qwen2Config
    shifted = True

    def load_source(self, path: Path) -> SourceWeights:
        """Dream's config.json and safetensors, read as a Qwen2 decoder (no remote code runs)."""
        raw = read_json(path / "config.json")
        config = dream_text_config(raw)
        state = read_safetensors(path)
        head_key = "model.embed_tokens.weight" if config.tie_word_embeddings else "lm_head.weight"
        unused = set(state) - {head_key} - {k for k in state if k.startswith("model.")}
        if unused:
            raise ValueError(f"unexpected Dream weights: {sorted(unused)[:5]}")
        return SourceWeights(
            text_config=config,
            backbone=prefixed(state, "model."),
            head={"decoder.weight": state[head_key]},
            dtype=state[head_key].dtype,
            token_ids={
                "anchor_token_id": raw.get("bos_token_id"),
                "mask_token_id": raw.get("mask_token_id"),
                "pad_token_id": raw.get("pad_token_id"),
            },
            source="DreamModel (safetensors, loaded into Qwen2Model)",
        )
