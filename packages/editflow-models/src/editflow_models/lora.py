"""Loading, LoRA and 4-bit helpers that know which modules are new.

- ``lora_config`` targets every Linear inside the backbone and puts the new modules (the two
  token heads, the rate head, the time embedding) in peft's ``modules_to_save``: they are
  trained in full without the user naming them.
- ``quantization_config`` keeps the same new modules out of bitsandbytes quantisation
  (``llm_int8_skip_modules``); only backbone Linears are quantised. Given the model's config it
  also keeps out the backbone Linears whose shape bitsandbytes' CPU 4-bit kernel cannot take
  (``cpu_4bit_incompatible``; the rule is spelled out there), or refuses when that is all of them.
- ``load_edit_flow_model(bits=4)`` makes a 4-bit model safe to train after an inference pass on
  CPU (see ``_unpack_cpu_4bit_for_grad``).

peft and bitsandbytes take seconds to import: they are imported inside the functions.
"""

from __future__ import annotations

import copy
import logging
import re
import warnings
from pathlib import Path

import torch
from torch import nn

from editflow_models import quiet
from editflow_models.configuration import EditFlowConfig
from editflow_models.modeling import EditFlowModel

logger = logging.getLogger(__name__)

#: bitsandbytes' CPU 4-bit shape rule (see ``cpu_4bit_incompatible``): in_features must be a
#: multiple of the quantisation blocksize, out_features a multiple of the packed layout's block_n.
BNB_4BIT_BLOCKSIZE = 64
BNB_CPU_4BIT_BLOCK_N = 32
CPU_4BIT_RULE = (
    f"bitsandbytes' 4-bit CPU kernel (x86 CPUs with AVX512-BF16: Intel Cooper Lake / Sapphire "
    f"Rapids and later, AMD Zen 4 and later) needs in_features % {BNB_4BIT_BLOCKSIZE} == 0 and "
    f"out_features % {BNB_CPU_4BIT_BLOCK_N} == 0"
)


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
        r: the LoRA rank.
        alpha: the LoRA scaling numerator (the update is scaled by alpha / r).
        dropout: dropout on the LoRA branch.
        target_modules: leaf names of backbone Linears to adapt (e.g. ``["q_proj", "v_proj"]``);
            default: every Linear in the backbone.

    Returns:
        A ``peft.LoraConfig`` whose ``target_modules`` is a regex over ``backbone.*`` module
            names only and whose ``modules_to_save`` lists the new modules.
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
    """Wrap ``model`` with LoRA adapters (``lora_config(model, **kwargs)``) in a ``PeftModel``.

    The backbone is frozen except for the adapters; the new modules train in full. For a 4-bit
    model, ``peft.prepare_model_for_kbit_training`` is applied first, and its bitsandbytes layers
    get the CPU unpack guard (``_unpack_cpu_4bit_for_grad``) if ``load_edit_flow_model`` did not
    add it.
    """
    from peft import get_peft_model, prepare_model_for_kbit_training

    if getattr(model, "is_loaded_in_4bit", False):
        _guard_cpu_4bit_training(model)
    if getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False):
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    with warnings.catch_warnings():
        # peft reads the deprecated ``is_gradient_checkpointing``: transformers' FutureWarning
        # is for peft, not for our user
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
        return get_peft_model(model, lora_config(model, **kwargs))


def _quantisable_linears(config: EditFlowConfig) -> dict[str, tuple[int, int]]:
    """``name -> (in_features, out_features)`` of the Linears transformers would quantise.

    Those are the ``type(m) is nn.Linear`` outside the new modules, found in a meta-device build:
    no weights are read or allocated.
    """
    with torch.device("meta"):
        model = EditFlowModel(copy.deepcopy(config))
    return {
        name: (module.in_features, module.out_features)
        for name, module in model.named_modules()
        if type(module) is nn.Linear and name.split(".", 1)[0] not in EditFlowModel.new_modules
    }


def cpu_4bit_compatible(in_features: int, out_features: int) -> bool:
    """Whether bitsandbytes runs a ``Linear(in_features, out_features)`` in 4 bits on every CPU."""
    return in_features % BNB_4BIT_BLOCKSIZE == 0 and out_features % BNB_CPU_4BIT_BLOCK_N == 0


def cpu_4bit_incompatible(config: EditFlowConfig) -> dict[str, tuple[int, int]]:
    """The backbone Linears bitsandbytes cannot run in 4 bits on CPU: ``name -> (in, out)``.

    The rule (bitsandbytes 0.50, read from its code): on a CPU where the native library reports
    AVX512-BF16 (``bitsandbytes.functional.has_avx512bf16``, GCC's
    ``__builtin_cpu_supports("avx512bf16")``: Intel Cooper Lake, Sapphire Rapids and later, AMD
    Zen 4 and later; AMX is not what decides), ``bnb.nn.Linear4bit.forward`` repacks the weight
    on its first inference call (eval mode, input not requiring grad) with
    ``bitsandbytes.functional._convert_weight_packed_for_cpu(block_n=32)``. That function
    asserts ``out_features % 32 == 0`` ("N must be divisible by block_n") and
    ``in_features % 2 == 0``, and reshapes the per-block scales to
    ``(out_features, in_features // blocksize)``, which only fits when
    ``in_features % blocksize == 0`` (``RuntimeError: shape '[32, 0]' is invalid`` for
    ``in_features=32``). The blocksize is 64 (``Params4bit``'s default; transformers'
    ``BitsAndBytesConfig`` sets none). So a layer is supported iff
    ``in_features % 64 == 0 and out_features % 32 == 0``.

    Elsewhere bitsandbytes takes any shape: without AVX512-BF16 (AMD Zen 2 / 3, Intel Skylake-SP
    / Ice Lake, ...) and in training mode it dequantises the flat 64-value blocks, and 8-bit
    (``Linear8bitLt``, row-wise int8) has no shape rule on CPU, so ``bits=8`` is not checked.

    The rule is applied on every machine, not only on AVX512-BF16 ones: the same checkpoint then
    quantises the same layers everywhere (a model quantised on a GPU or an older CPU still runs
    when moved to a newer one, and a test on an AMD laptop means what it means on a Xeon).
    Pretrained checkpoints meet the rule anyway (hidden and MLP sizes are multiples of 64, key /
    value widths multiples of 32): in practice it only bites tiny test models.
    """
    return {
        name: shape
        for name, shape in _quantisable_linears(config).items()
        if not cpu_4bit_compatible(*shape)
    }


def _describe(layers: dict[str, tuple[int, int]]) -> str:
    """``backbone.layers.*.self_attn.k_proj (in 64, out 16) x2, ...``: one entry per layer kind."""
    groups: dict[tuple[str, int, int], int] = {}
    for name, (i, o) in layers.items():
        key = (re.sub(r"(?<=\.)\d+(?=\.)", "*", name), i, o)
        groups[key] = groups.get(key, 0) + 1
    return ", ".join(
        f"{pattern} (in {i}, out {o})" + (f" x{n}" if n > 1 else "")
        for (pattern, i, o), n in groups.items()
    )


def _cpu_4bit_skips(config: EditFlowConfig) -> list[str]:
    """Backbone Linears to keep unquantised in 4 bits; raises when that is all of them."""
    quantisable = _quantisable_linears(config)
    bad = {name: shape for name, shape in quantisable.items() if not cpu_4bit_compatible(*shape)}
    if not bad:
        return []
    if len(bad) == len(quantisable):
        raise ValueError(
            f"4-bit quantisation would quantise none of the {len(quantisable)} backbone Linears: "
            f"{CPU_4BIT_RULE}, and every one misses it: {_describe(bad)}. Load the model without "
            f"bits (or with bits=8, which has no shape rule), or use a model whose hidden, MLP and "
            f"attention widths are multiples of {BNB_4BIT_BLOCKSIZE} (key / value widths "
            f"multiples of {BNB_CPU_4BIT_BLOCK_N})."
        )
    logger.warning(
        "4-bit: keeping %d of %d backbone Linears unquantised because %s: %s",
        len(bad),
        len(quantisable),
        CPU_4BIT_RULE,
        _describe(bad),
    )
    return list(bad)


def quantization_config(
    bits: int = 4,
    compute_dtype: torch.dtype = torch.bfloat16,
    config: EditFlowConfig | None = None,
):
    """A ``BitsAndBytesConfig`` (4-bit NF4 or 8-bit) that leaves the new modules unquantised.

    Args:
        bits: 4 (NF4, double quantisation off, blocksize 64) or 8 (LLM.int8).
        compute_dtype: the 4-bit layers' compute dtype.
        config: the model's ``EditFlowConfig``. With ``bits=4`` its backbone Linears are checked
            against bitsandbytes' CPU 4-bit shape rule (``cpu_4bit_incompatible``): the layers
            that miss it are kept unquantised too, with one warning naming them and the rule, and
            a ``ValueError`` is raised when no layer would be left to quantise.
            ``load_edit_flow_model`` always passes it.

    Why skip and not refuse: a layer that misses the rule would crash inside bitsandbytes on the
    first inference call on an AVX512-BF16 CPU, after a load that looked fine. Refusing the whole
    model would stop a user whose other layers quantise well (the usual case: only narrow key /
    value projections of a small model miss it) for a few layers that cost little to keep in
    full precision; so those are kept, and said so once. A model none of whose layers qualifies
    is refused instead: a "4-bit" model with nothing quantised would be a silent no-op.
    """
    from transformers import BitsAndBytesConfig

    skip = list(EditFlowModel.new_modules)
    if bits == 4 and config is not None:
        skip += _cpu_4bit_skips(config)
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


_HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder")


def load_edit_flow_model(path: str | Path, bits: int | None = None, **kwargs) -> EditFlowModel:
    """Load an Edit Flow checkpoint (safetensors only), optionally quantised to 4 / 8 bits.

    Args:
        path: checkpoint directory (or hub id).
        bits: None (source dtype), 4 or 8 (bitsandbytes; the new modules stay unquantised). With
            4, the backbone Linears are checked against bitsandbytes' CPU shape rule from the
            config alone, before any weight is read (``quantization_config``: the few that miss
            it stay unquantised with a warning; if all miss it, ``ValueError``), and the model
            gets the CPU unpack guard so it can be trained after an inference pass.
        **kwargs: passed to ``from_pretrained`` (``dtype``, ``device_map``,
            ``attn_implementation``).
    """
    if bits is not None:
        config = kwargs.get("config")
        if not isinstance(config, EditFlowConfig):
            config = EditFlowConfig.from_pretrained(
                path, **{k: kwargs[k] for k in _HUB_KWARGS if k in kwargs}
            )
        kwargs["quantization_config"] = quantization_config(bits, config=config)
    model = EditFlowModel.from_pretrained(path, use_safetensors=True, **kwargs)
    if bits == 4:
        _guard_cpu_4bit_training(model)
        for message in dict.fromkeys(quiet.held_back(quiet.BNB_MESSAGE)):
            logger.warning("bitsandbytes: %s", message)  # held back at start-up, shown here
    return model


def _unpack_cpu_4bit_for_grad(module: nn.Module, args: tuple) -> None:
    """Forward pre-hook on a ``bnb.nn.Linear4bit``: undo bitsandbytes' CPU repacking when needed.

    It acts before a call that may need gradients.

    ``Linear4bit.forward`` repacks its weight for the AVX512-BF16 kernel on the first call in
    eval mode with an input that does not require grad, and keeps it packed; every later call,
    training ones included, then goes through ``torch.ops.bitsandbytes.gemv_4bit``, which has no
    backward: the gradient with respect to the layer's input is silently dropped (torch only
    warns that no autograd kernel is registered), and a layer with a bias raises. So evaluating
    a QLoRA model between training steps would corrupt every later step. Before any call in
    which bitsandbytes would not pack (training mode, or an input that requires grad), this puts
    the weight back in the normal layout (``_convert_weight_packed_for_cpu_inverse``, the same
    call bitsandbytes makes before saving); the next inference call packs it again. The packed
    layout stores the block scales in bf16, so a weight that went through one pack / unpack
    differs from the freshly quantised one by the bf16 rounding of its scales (about 0.1 %).
    """
    quant_state = getattr(module.weight, "quant_state", None)
    if not getattr(quant_state, "packing_format_for_cpu", False):
        return
    x = args[0] if args else None
    if module.training or (isinstance(x, torch.Tensor) and x.requires_grad):
        from bitsandbytes.functional import _convert_weight_packed_for_cpu_inverse

        data, quant_state = _convert_weight_packed_for_cpu_inverse(module.weight.data, quant_state)
        if quant_state.absmax.dim() == 2:
            # bitsandbytes 0.50 restores the scales' layout only for double-quantised states: a
            # plain one keeps the packed (in // blocksize, out) layout, whose flat order is
            # wrong as soon as in_features > blocksize; put it back in row-major block order.
            quant_state.absmax = quant_state.absmax.T.reshape(-1).float()
        module.weight.data = data
        module.weight.quant_state = quant_state
        module.quant_state = quant_state


def _guard_cpu_4bit_training(model: nn.Module) -> None:
    """Register ``_unpack_cpu_4bit_for_grad`` on every bitsandbytes 4-bit Linear (once)."""
    import bitsandbytes as bnb

    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit) and not getattr(
            module, "_editflow_unpack_guard", False
        ):
            module.register_forward_pre_hook(_unpack_cpu_4bit_for_grad)
            module._editflow_unpack_guard = True
