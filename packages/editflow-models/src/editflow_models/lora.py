"""Loading, LoRA and 4-bit helpers that know which modules are new.

- ``lora_config`` targets every Linear inside the backbone and puts the new modules (the two
  token heads, the rate head, the time embedding) in peft's ``modules_to_save``: they are
  trained in full without the user naming them.
- ``quantization_config`` keeps the same new modules out of bitsandbytes quantisation
  (``llm_int8_skip_modules``); only backbone Linears are quantised.

peft and bitsandbytes take seconds to import: they are imported inside the functions.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from editflow_models.modeling import EditFlowModel


def _new_modules(model: EditFlowModel) -> list[str]:
    return [name for name in EditFlowModel.new_modules if getattr(model, name, None) is not None]


def lora_config(
    model: EditFlowModel,
    r: int = 16,
    alpha: int = 32,
    dropout: float = 0.0,
    target_modules: list[str] | None = None,
):
    """A ``peft.LoraConfig`` for an Edit Flow model.

    Args:
        model: the model to adapt.
        r / alpha / dropout: LoRA rank, scaling numerator and dropout.
        target_modules: leaf names of backbone Linears to adapt (e.g. ``["q_proj", "v_proj"]``);
            default: every Linear in the backbone.

    Returns:
        ``LoraConfig`` whose ``target_modules`` is a regex over ``backbone.*`` module names only
        and whose ``modules_to_save`` lists the new modules.
    """
    from peft import LoraConfig

    if target_modules is None:
        target_modules = sorted(
            {
                name.rsplit(".", 1)[-1]
                for name, module in model.backbone.named_modules()
                if isinstance(module, nn.Linear) or type(module).__name__.startswith("Linear")
            }
        )
    names = "|".join(re.escape(n) for n in target_modules)
    return LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=rf"backbone\..*\.({names})",
        modules_to_save=_new_modules(model),
    )


def apply_lora(model: EditFlowModel, **kwargs):
    """Wrap ``model`` with LoRA adapters (``lora_config(model, **kwargs)``); returns a ``PeftModel``.

    The backbone is frozen except for the adapters; the new modules train in full. For a 4-bit
    model, ``peft.prepare_model_for_kbit_training`` is applied first.
    """
    from peft import get_peft_model, prepare_model_for_kbit_training

    if getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False):
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return get_peft_model(model, lora_config(model, **kwargs))


def quantization_config(bits: int = 4, compute_dtype: torch.dtype = torch.bfloat16):
    """A ``BitsAndBytesConfig`` (4-bit NF4 or 8-bit) that leaves the new modules unquantised."""
    from transformers import BitsAndBytesConfig

    skip = list(EditFlowModel.new_modules)
    if bits == 4:
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=compute_dtype,
            llm_int8_skip_modules=skip,
        )
    if bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip)
    raise ValueError(f"bits must be 4 or 8, got {bits}")


def load_model(path: str | Path, bits: int | None = None, **kwargs) -> EditFlowModel:
    """Load an Edit Flow checkpoint (safetensors only), optionally quantised to 4 / 8 bits.

    Args:
        path: checkpoint directory (or hub id).
        bits: None (source dtype), 4 or 8 (bitsandbytes; the new modules stay unquantised).
        **kwargs: passed to ``from_pretrained`` (``dtype``, ``device_map``, ``attn_implementation``).
    """
    if bits is not None:
        kwargs["quantization_config"] = quantization_config(bits)
    return EditFlowModel.from_pretrained(path, use_safetensors=True, **kwargs)
