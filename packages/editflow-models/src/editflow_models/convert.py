"""Conversion of a pretrained checkpoint into an Edit Flow checkpoint, and the from-scratch builder.

``convert`` copies the source backbone unchanged, copies the source LM / MLM head (transform
included) into both token heads, and creates the rate head (and nothing else: converted models
are not time conditioned unless asked). The model keeps the source's dtype and is written as
safetensors with its tokenizer beside it. ``ConversionReport`` lists what was copied and what is
new; the CLI prints it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import initialization as init

from editflow_models.architectures import ARCHITECTURES, SOURCE_MODEL_TYPES
from editflow_models.checkpoint import (
    read_source_config,
    resolve_source,
    save_tokenizer,
    tokenizer_ids,
)
from editflow_models.configuration import EditFlowConfig
from editflow_models.dtypes import resolve_dtype
from editflow_models.modeling import EditFlowModel


def detect_arch(path: Path) -> str:
    """The arch name for a source checkpoint, from its config.json ``model_type``.

    Raises:
        ValueError: unsupported or already an Edit Flow checkpoint; the message lists what is
            supported.
    """
    model_type = read_source_config(path).get("model_type")
    if model_type == "editflow":
        raise ValueError(f"{path} is already an Edit Flow checkpoint")
    if model_type not in SOURCE_MODEL_TYPES:
        raise ValueError(
            f"unsupported architecture {model_type!r}; supported model types: "
            f"{', '.join(SOURCE_MODEL_TYPES)}"
        )
    return SOURCE_MODEL_TYPES[model_type]


@dataclass
class ConversionReport:
    """What ``convert`` did."""

    output: Path
    arch: str
    source: str
    dtype: torch.dtype
    copied: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    tokenizer: str | None = None
    config: dict = field(default_factory=dict)

    def __str__(self) -> str:
        dtype = str(self.dtype).removeprefix("torch.")
        lines = [f"converted {self.source} ({self.arch}, {dtype}) -> {self.output}"]
        lines += [f"  copied: {item}" for item in self.copied]
        lines += [f"  new:    {item}" for item in self.new]
        tokenizer = self.tokenizer or "none found in the source; add one beside the weights"
        lines.append(f"  tokenizer: {tokenizer}")
        lines.append("  config: " + ", ".join(f"{k}={v}" for k, v in self.config.items()))
        return "\n".join(lines)


def _count(state: dict[str, torch.Tensor]) -> str:
    return f"{len(state)} tensors, {sum(v.numel() for v in state.values()):,} params"


def convert(
    src: str | Path,
    output: str | Path,
    *,
    scheduler: str = "cubic",
    x0: str = "empty",
    time_conditioning: bool = False,
    anchor_token_id: int | None = None,
    mask_token_id: int | None = None,
    pad_token_id: int | None = None,
    dtype: str | torch.dtype | None = None,
    given_embedding: bool = False,
    reverse_rates: bool = False,
) -> ConversionReport:
    """Convert a pretrained masked LM, a2d / causal decoder, LLaDA or Dream into an Edit Flow model.

    Args:
        src: local directory or hub id of the source checkpoint.
        output: directory to write (config.json, model.safetensors, tokenizer files).
        scheduler: kappa scheduler spec stored in the config.
        x0: source-distribution spec stored in the config.
        time_conditioning: add a (zero-initialised) time embedding.
        anchor_token_id: the id at position 0 of every sequence (default: the source's BOS, else
            CLS).
        mask_token_id: the mask token id (default: the source tokenizer's, else its config's).
        pad_token_id: the padding id (default: the source tokenizer's, else its config's).
        dtype: the saved weights' dtype: None / "auto" (the source's), "fp32", "bf16", "fp16".
        given_embedding: add a (zero-initialised) embedding of given (prompt / frozen) tokens.
        reverse_rates: the new rate head also predicts reverse rates (self-correction).

    Returns:
        A ``ConversionReport`` (``str(report)`` is the human-readable summary).

    Raises:
        ValueError: unsupported architecture, unreadable source, or no anchor token id found.
    """
    path = resolve_source(src)
    arch_name = detect_arch(path)
    arch = ARCHITECTURES[arch_name]
    weights = arch.load_source(path)

    ids = weights.token_ids | {k: v for k, v in tokenizer_ids(path).items() if v is not None}
    explicit = {
        "anchor_token_id": anchor_token_id,
        "mask_token_id": mask_token_id,
        "pad_token_id": pad_token_id,
    }
    ids |= {k: v for k, v in explicit.items() if v is not None}
    if ids.get("anchor_token_id") is None:
        raise ValueError(f"no BOS / CLS token id in {src}; pass anchor_token_id explicitly")

    config = EditFlowConfig(
        text_config=weights.text_config,
        arch=arch_name,
        time_conditioning=time_conditioning,
        given_embedding=given_embedding,
        reverse_rates=reverse_rates,
        scheduler=scheduler,
        x0=x0,
        **ids,
    )
    target = resolve_dtype(dtype)  # before any work: an unknown name fails at once
    model = from_weights(config, weights)
    if target != "auto":
        model.to(target)
    output = Path(output)
    model.save_pretrained(output)
    tokenizer = save_tokenizer(path, output)

    copied = [f"backbone <- source backbone ({_count(weights.backbone)})"]
    head_desc = f"{_count(weights.head)}: " + ", ".join(
        sorted({k.rsplit(".", 1)[0] for k in weights.head})
    )
    copied += [f"ins_head <- source LM head ({head_desc})", "sub_head <- source LM head (copy)"]
    H = weights.text_config.hidden_size
    outs = 6 if reverse_rates else 3
    new = [f"rate_head: Linear({H}, {outs}) + softplus ({outs * (H + 1)} params)"]
    if given_embedding:
        new.append(f"given_embed: Embedding(2, {H}) (zero)")
    if time_conditioning:
        n = sum(p.numel() for p in model.time_embed.parameters())
        new.append(f"time_embed ({n:,} params, last layer zero)")
    return ConversionReport(
        output=output,
        arch=arch_name,
        source=f"{src} [{weights.source}]",
        dtype=weights.dtype if target == "auto" else target,
        copied=copied,
        new=new,
        tokenizer=tokenizer,
        config={"scheduler": scheduler, "x0": x0, "time_conditioning": time_conditioning, **ids},
    )


def from_weights(config: EditFlowConfig, weights) -> EditFlowModel:
    """Build an ``EditFlowModel`` from a source's ``SourceWeights`` without a random init pass.

    The backbone tensors are moved in (no copy), the head is cloned into both token heads (so they
    never share storage with the embedding), the new modules are initialised.
    """
    with init.no_init_weights():
        model = EditFlowModel(config)
    state = {f"backbone.{k}": v for k, v in weights.backbone.items()}
    for name in ("ins_head", "sub_head"):
        state |= {f"{name}.{k}": v.detach().clone() for k, v in weights.head.items()}
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    new = tuple(f"{m}." for m in ("rate_head", "time_embed", "given_embed"))
    missing = [k for k in missing if not k.startswith(new)]
    if missing or unexpected:
        raise ValueError(
            f"source weights do not fit the model: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )
    model.init_new_modules()
    model.to(weights.dtype)
    model.tie_weights()
    return model.eval()


def build_model_from_scratch(
    arch: str = "modernbert",
    *,
    vocab_size: int,
    anchor_token_id: int,
    hidden_size: int = 256,
    num_layers: int = 4,
    num_heads: int = 4,
    intermediate_size: int | None = None,
    max_position_embeddings: int = 2048,
    time_conditioning: bool = True,
    mask_token_id: int | None = None,
    pad_token_id: int | None = 0,
    scheduler: str = "cubic",
    x0: str = "empty",
    given_embedding: bool = False,
    reverse_rates: bool = False,
    **text_config_overrides,
) -> EditFlowModel:
    """A randomly initialised Edit Flow model (fp32) of the given family and size.

    Args:
        arch: one of ``ARCHITECTURES`` (modernbert, bert, roberta, xlm-roberta, qwen2, qwen3,
            llama, llada, dream).
        vocab_size: V, the tokenizer's size.
        anchor_token_id: the BOS / CLS id put at position 0 of every sequence.
        hidden_size: H, the width of the hidden states.
        num_layers: the number of layers.
        num_heads: the number of attention heads.
        intermediate_size: MLP width (default 4 H).
        max_position_embeddings: longest sequence.
        time_conditioning: add the time embedding (default on for from-scratch models).
        mask_token_id: the mask token id (stored in the config).
        pad_token_id: the padding id (stored in the config).
        scheduler: the kappa scheduler spec stored in the config.
        x0: the x0 spec stored in the config.
        given_embedding: add the (zero-initialised) embedding of given tokens.
        reverse_rates: the rate head also predicts reverse rates (self-correction).
        **text_config_overrides: extra fields for the backbone config (e.g. ``local_attention``).

    Returns:
        ``EditFlowModel`` in train mode.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown arch {arch!r}; supported: {', '.join(ARCHITECTURES)}")
    text_config = ARCHITECTURES[arch].scratch_text_config(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_layers=num_layers,
        num_heads=num_heads,
        intermediate_size=intermediate_size or 4 * hidden_size,
        max_position_embeddings=max_position_embeddings,
        pad_token_id=pad_token_id,
        **text_config_overrides,
    )
    config = EditFlowConfig(
        text_config=text_config,
        arch=arch,
        time_conditioning=time_conditioning,
        given_embedding=given_embedding,
        reverse_rates=reverse_rates,
        scheduler=scheduler,
        x0=x0,
        anchor_token_id=anchor_token_id,
        mask_token_id=mask_token_id,
        pad_token_id=pad_token_id,
    )
    return EditFlowModel(config)
