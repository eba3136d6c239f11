"""Small stand-ins for LLaDA's and Dream's hub modelling code (which cannot be downloaded here).

They reproduce the structure and parameter names of the released checkpoints:
- LLaDA (``LLaDAModelLM`` -> ``model.transformer``: ``wte``, ``blocks.i.{attn_norm, q_proj,
  k_proj, v_proj, attn_out, ff_norm, ff_proj, up_proj, ff_out}``, ``ln_f``, ``ff_out``): a
  Llama-style block with RMSNorm, rotate-half RoPE, SwiGLU (``silu(ff_proj(x)) * up_proj(x)``),
  and attention with no mask and no causality.
- Dream (``DreamModel`` -> ``model.{embed_tokens, layers.i.{self_attn.{q,k,v,o}_proj,
  mlp.{gate,up,down}_proj, input_layernorm, post_attention_layernorm}, norm}``, ``lm_head``):
  Qwen2's layer (q/k/v with bias) with full attention; its logits are read shifted (the state at
  i - 1 predicts token i).

Each writes ``config.json`` (with the hub's ``model_type``) and ``model.safetensors`` like the
real checkpoints, so ``editflow_models.convert`` reads them exactly as it would read the real ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    x32 = x.float()
    return weight * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


def rope(x: torch.Tensor, theta: float) -> torch.Tensor:
    """Rotate-half RoPE on (B, nh, T, hs) at positions 0..T-1."""
    T, hs = x.shape[-2], x.shape[-1]
    inv_freq = 1.0 / (theta ** (torch.arange(0, hs, 2, dtype=torch.float) / hs))
    freqs = torch.outer(torch.arange(T, dtype=torch.float), inv_freq)
    pos = torch.cat([freqs, freqs], dim=-1)  # (T, hs)
    x1, x2 = x[..., : hs // 2], x[..., hs // 2 :]
    rotated = torch.cat([-x2, x1], dim=-1)
    return x * pos.cos() + rotated * pos.sin()


def full_attention(q, k, v, n_heads: int, n_kv: int, theta: float) -> torch.Tensor:
    """(B, T, *) projections -> (B, T, n_heads * hs): RoPE, GQA, no mask, not causal."""
    B, T, _ = q.shape
    hs = q.shape[-1] // n_heads
    q = rope(q.view(B, T, n_heads, hs).transpose(1, 2), theta)
    k = rope(k.view(B, T, n_kv, hs).transpose(1, 2), theta)
    v = v.view(B, T, n_kv, hs).transpose(1, 2)
    k, v = (z.repeat_interleave(n_heads // n_kv, dim=1) for z in (k, v))
    out = F.scaled_dot_product_attention(q, k, v, is_causal=False)
    return out.transpose(1, 2).reshape(B, T, n_heads * hs)


class LLaDABlock(nn.Module):
    def __init__(self, d: int, n_heads: int, n_kv: int, mlp: int) -> None:
        super().__init__()
        hs = d // n_heads
        self.attn_norm = nn.Module()
        self.attn_norm.weight = nn.Parameter(1 + 0.1 * torch.randn(d))
        self.ff_norm = nn.Module()
        self.ff_norm.weight = nn.Parameter(1 + 0.1 * torch.randn(d))
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, n_kv * hs, bias=False)
        self.v_proj = nn.Linear(d, n_kv * hs, bias=False)
        self.attn_out = nn.Linear(d, d, bias=False)
        self.ff_proj = nn.Linear(d, mlp, bias=False)
        self.up_proj = nn.Linear(d, mlp, bias=False)
        self.ff_out = nn.Linear(mlp, d, bias=False)


class LLaDAStandin(nn.Module):
    """``LLaDAModelLM`` layout: ``self.model.transformer`` holds everything."""

    def __init__(
        self,
        vocab: int = 101,
        d: int = 32,
        n_layers: int = 2,
        n_heads: int = 4,
        n_kv: int = 2,
        mlp: int = 64,
    ) -> None:
        super().__init__()
        self.cfg = dict(
            model_type="llada",
            architectures=["LLaDAModelLM"],
            d_model=d,
            n_heads=n_heads,
            n_kv_heads=n_kv,
            n_layers=n_layers,
            mlp_hidden_size=mlp,
            vocab_size=vocab,
            embedding_size=vocab,
            rope_theta=500000.0,
            rms_norm_eps=1e-5,
            max_sequence_length=128,
            block_type="llama",
            layer_norm_type="rms",
            activation_type="silu",
            rope=True,
            alibi=False,
            attention_layer_norm=False,
            include_bias=False,
            include_qkv_bias=False,
            scale_logits=False,
            input_emb_norm=False,
            weight_tying=False,
            mask_token_id=vocab - 1,
            pad_token_id=0,
            eos_token_id=0,
            bos_token_id=1,
            torch_dtype="float32",
        )
        self.model = nn.Module()
        self.model.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(vocab, d),
                blocks=nn.ModuleList(LLaDABlock(d, n_heads, n_kv, mlp) for _ in range(n_layers)),
                ff_out=nn.Linear(d, vocab, bias=False),
            )
        )
        self.model.transformer.ln_f = nn.Module()
        self.model.transformer.ln_f.weight = nn.Parameter(1 + 0.1 * torch.randn(d))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        c, tr = self.cfg, self.model.transformer
        x = tr.wte(input_ids)
        for blk in tr.blocks:
            h = rms_norm(x, blk.attn_norm.weight, c["rms_norm_eps"])
            att = full_attention(
                blk.q_proj(h),
                blk.k_proj(h),
                blk.v_proj(h),
                c["n_heads"],
                c["n_kv_heads"],
                c["rope_theta"],
            )
            x = x + blk.attn_out(att)
            h = rms_norm(x, blk.ff_norm.weight, c["rms_norm_eps"])
            x = x + blk.ff_out(F.silu(blk.ff_proj(h)) * blk.up_proj(h))
        return tr.ff_out(rms_norm(x, tr.ln_f.weight, c["rms_norm_eps"]))  # (B, T, V)

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "config.json").write_text(json.dumps(self.cfg))
        save_file(
            {k: v.contiguous() for k, v in self.state_dict().items()},
            directory / "model.safetensors",
        )
        return directory


class DreamLayer(nn.Module):
    def __init__(self, d: int, n_heads: int, n_kv: int, mlp: int) -> None:
        super().__init__()
        hs = d // n_heads
        self.self_attn = nn.Module()
        self.self_attn.q_proj = nn.Linear(d, d, bias=True)
        self.self_attn.k_proj = nn.Linear(d, n_kv * hs, bias=True)
        self.self_attn.v_proj = nn.Linear(d, n_kv * hs, bias=True)
        self.self_attn.o_proj = nn.Linear(d, d, bias=False)
        self.mlp = nn.Module()
        self.mlp.gate_proj = nn.Linear(d, mlp, bias=False)
        self.mlp.up_proj = nn.Linear(d, mlp, bias=False)
        self.mlp.down_proj = nn.Linear(mlp, d, bias=False)
        self.input_layernorm = nn.Module()
        self.input_layernorm.weight = nn.Parameter(1 + 0.1 * torch.randn(d))
        self.post_attention_layernorm = nn.Module()
        self.post_attention_layernorm.weight = nn.Parameter(1 + 0.1 * torch.randn(d))


class DreamStandin(nn.Module):
    """``DreamModel`` layout: ``self.model`` (Qwen2-style decoder, full attention) + ``lm_head``."""

    def __init__(
        self,
        vocab: int = 103,
        d: int = 32,
        n_layers: int = 2,
        n_heads: int = 4,
        n_kv: int = 2,
        mlp: int = 64,
    ) -> None:
        super().__init__()
        self.cfg = dict(
            model_type="Dream",
            architectures=["DreamModel"],
            hidden_size=d,
            intermediate_size=mlp,
            num_hidden_layers=n_layers,
            num_attention_heads=n_heads,
            num_key_value_heads=n_kv,
            vocab_size=vocab,
            rope_theta=1000000.0,
            rms_norm_eps=1e-6,
            max_position_embeddings=128,
            hidden_act="silu",
            tie_word_embeddings=False,
            use_sliding_window=False,
            rope_scaling=None,
            mask_token_id=vocab - 1,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=0,
            torch_dtype="float32",
        )
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(vocab, d)
        self.model.layers = nn.ModuleList(
            DreamLayer(d, n_heads, n_kv, mlp) for _ in range(n_layers)
        )
        self.model.norm = nn.Module()
        self.model.norm.weight = nn.Parameter(1 + 0.1 * torch.randn(d))
        self.lm_head = nn.Linear(d, vocab, bias=False)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Unshifted logits: row i is the state at i read by the LM head (predicts token i + 1)."""
        c, m = self.cfg, self.model
        x = m.embed_tokens(input_ids)
        for layer in m.layers:
            a = layer.self_attn
            h = rms_norm(x, layer.input_layernorm.weight, c["rms_norm_eps"])
            att = full_attention(
                a.q_proj(h),
                a.k_proj(h),
                a.v_proj(h),
                c["num_attention_heads"],
                c["num_key_value_heads"],
                c["rope_theta"],
            )
            x = x + a.o_proj(att)
            h = rms_norm(x, layer.post_attention_layernorm.weight, c["rms_norm_eps"])
            x = x + layer.mlp.down_proj(F.silu(layer.mlp.gate_proj(h)) * layer.mlp.up_proj(h))
        return self.lm_head(rms_norm(x, m.norm.weight, c["rms_norm_eps"]))  # (B, T, V)

    save = LLaDAStandin.save
