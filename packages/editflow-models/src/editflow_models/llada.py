"""LLaDA (GSAI-ML/LLaDA-8B-*): a bidirectional Llama-style mask-diffusion LM.

LLaDA's modelling code ships with its hub checkpoints (trust_remote_code, OLMo-derived names:
``transformer.wte``, ``blocks.i.{q,k,v}_proj``, ``attn_out``, ``ff_proj`` (gate), ``up_proj``,
``ff_out`` (down), ``attn_norm``, ``ff_norm``, ``ln_f``, ``transformer.ff_out`` (LM head)). Its
"llama" block is exactly a Llama decoder layer without causal masking, so the backbone here is
transformers' own ``LlamaModel`` with ``is_causal=False`` and LLaDA's weights renamed into it: no
remote code runs, neither at conversion nor at load time. Conversion reads ``config.json`` and the
safetensors directly and refuses configs whose block differs from Llama's (biases, ALiBi, QK norm,
logit scaling, ...). Unlike LLaDA's own code, padding is masked out of attention here; on unpadded
input the two agree.

No predictions are shifted: the state at i predicts token i (substitution) and the token inserted
after i (insertion). The mask token id (126336 for LLaDA-8B) is read from its config.

Tested against a small stand-in module with LLaDA's structure and parameter names
(tests/models/standins.py), since LLaDA's code cannot be downloaded here.
"""

from __future__ import annotations

import re
from pathlib import Path

from transformers import LlamaConfig

from editflow_models.architecture_base import SourceWeights
from editflow_models.checkpoint import read_json, read_safetensors
from editflow_models.decoder import DecoderArch

#: LLaDA config values that must hold for the block to be a Llama decoder layer.
_REQUIRED = {
    "block_type": "llama",
    "layer_norm_type": "rms",
    "activation_type": "silu",
    "rope": True,
    "alibi": False,
    "attention_layer_norm": False,
    "include_bias": False,
    "include_qkv_bias": False,
    "scale_logits": False,
    "input_emb_norm": False,
}

_RENAMES = [
    (r"^model\.transformer\.wte\.", "embed_tokens."),
    (r"^model\.transformer\.ln_f\.", "norm."),
    (r"^model\.transformer\.blocks\.(\d+)\.attn_norm\.", r"layers.\1.input_layernorm."),
    (r"^model\.transformer\.blocks\.(\d+)\.ff_norm\.", r"layers.\1.post_attention_layernorm."),
    (r"^model\.transformer\.blocks\.(\d+)\.(q_proj|k_proj|v_proj)\.", r"layers.\1.self_attn.\2."),
    (r"^model\.transformer\.blocks\.(\d+)\.attn_out\.", r"layers.\1.self_attn.o_proj."),
    (r"^model\.transformer\.blocks\.(\d+)\.ff_proj\.", r"layers.\1.mlp.gate_proj."),
    (r"^model\.transformer\.blocks\.(\d+)\.up_proj\.", r"layers.\1.mlp.up_proj."),
    (r"^model\.transformer\.blocks\.(\d+)\.ff_out\.", r"layers.\1.mlp.down_proj."),
]


def llada_text_config(raw: dict) -> LlamaConfig:
    """The ``LlamaConfig`` equivalent of a LLaDA ``config.json`` dict."""
    wrong = {k: raw.get(k) for k, v in _REQUIRED.items() if raw.get(k, v) != v}
    if wrong:
        raise ValueError(f"unsupported LLaDA config (needs {_REQUIRED}): {wrong}")
    config = LlamaConfig(
        vocab_size=raw.get("embedding_size") or raw["vocab_size"],
        hidden_size=raw["d_model"],
        intermediate_size=raw["mlp_hidden_size"],
        num_hidden_layers=raw["n_layers"],
        num_attention_heads=raw["n_heads"],
        num_key_value_heads=raw.get("n_kv_heads") or raw["n_heads"],
        head_dim=raw["d_model"] // raw["n_heads"],
        max_position_embeddings=raw.get("max_sequence_length", 4096),
        rms_norm_eps=raw.get("rms_norm_eps", 1e-5),
        rope_parameters={"rope_type": "default", "rope_theta": raw.get("rope_theta", 10000.0)},
        hidden_act="silu",
        attention_bias=False,
        mlp_bias=False,
        tie_word_embeddings=bool(raw.get("weight_tying", False)),
        initializer_range=raw.get("init_std", 0.02),
        pad_token_id=raw.get("pad_token_id"),
        bos_token_id=raw.get("bos_token_id"),
        eos_token_id=raw.get("eos_token_id"),
    )
    config.is_causal = False
    return config


class LLaDAArch(DecoderArch):
    """LLaDA checkpoints (``model_type: llada``), carried on a bidirectional ``LlamaModel``."""

    name = "llada"
    causal_source = False
    config_class = LlamaConfig

    def load_source(self, path: Path) -> SourceWeights:
        """LLaDA's config.json and safetensors, renamed to ``LlamaModel`` keys (no remote code)."""
        raw = read_json(path / "config.json")
        config = llada_text_config(raw)
        state = read_safetensors(path)
        backbone = {}
        for key, value in state.items():
            for pattern, repl in _RENAMES:
                new, hits = re.subn(pattern, repl, key)
                if hits:
                    backbone[new] = value
                    break
        head_key = (
            "model.transformer.wte.weight"
            if config.tie_word_embeddings
            else "model.transformer.ff_out.weight"
        )
        unused = (
            set(state) - {head_key} - {k for k in state if any(re.match(p, k) for p, _ in _RENAMES)}
        )
        if unused:
            raise ValueError(f"unexpected LLaDA weights: {sorted(unused)[:5]}")
        dtype = next(iter(state.values())).dtype
        return SourceWeights(
            text_config=config,
            backbone=backbone,
            head={"decoder.weight": state[head_key]},
            dtype=dtype,
            token_ids={
                "anchor_token_id": raw.get("bos_token_id"),
                "mask_token_id": raw.get("mask_token_id"),
                "pad_token_id": raw.get("pad_token_id"),
            },
            source="LLaDAModelLM (safetensors, remapped to LlamaModel)",
        )
