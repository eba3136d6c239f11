"""The tokenizer and the model a run trains: from scratch, an Edit Flow checkpoint, or converted.

- No ``model_name_or_path``: a fresh model (``build_model_from_scratch``) over the given
  tokenizer, or over a byte-level BPE trained on the training texts and cached in
  ``<output_dir>/tokenizer``.
- An Edit Flow checkpoint (``model_type == "editflow"``): loaded as is (4-bit on request).
- Any other checkpoint: converted once into ``<output_dir>/converted`` (main process first),
  then loaded.
- ``--scheduler`` / ``--x0_sampler`` overwrite the config's specs (the sampler reads them there),
  ``--lam_prop`` its training paths' spreading rate (a later run continues with it).
- ``--lora`` wraps the model with adapters on the backbone; the new heads train in full.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from editflow_models import (
    EditFlowModel,
    anchor_token_id,
    apply_lora,
    build_model_from_scratch,
    convert,
    load_edit_flow_model,
    resolve_dtype,
)
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from editflow_train.config import EditFlowTrainingArguments, ModelArguments
from editflow_train.tokenizer import local_tokenizer


def is_editflow_checkpoint(path: str) -> bool:
    """Whether ``path`` (dir or hub id) holds an Edit Flow config.

    The config is read as JSON: ``AutoConfig`` refuses LLaDA / Dream configs, whose classes ship
    as remote code.
    """
    from editflow_models import read_source_config, resolve_source

    return read_source_config(resolve_source(path)).get("model_type") == "editflow"


def source_checkpoint(model_args: ModelArguments, args: EditFlowTrainingArguments) -> str | None:
    """The Edit Flow checkpoint to load (converting a foreign one first), or ``None`` (scratch)."""
    src = model_args.model_name_or_path
    if not src:  # None, or "" to clear a config's model on the command line
        return None
    import editflow_models  # noqa: F401  (registers the editflow model type)

    if is_editflow_checkpoint(src):
        return src
    out = Path(args.output_dir) / "converted"
    with args.main_process_first(desc="conversion"):
        if not (out / "config.json").is_file():
            convert(
                src,
                out,
                scheduler=args.scheduler or "cubic",
                x0=args.x0_sampler or "empty",
                time_conditioning=model_args.time_conditioning,
                given_embedding=model_args.given_embedding,
                reverse_rates=model_args.reverse_rates,
            )
    return str(out)


def load_tokenizer(
    model_args: ModelArguments,
    args: EditFlowTrainingArguments,
    checkpoint: str | None,
    texts: Callable[[], Iterable[str]],
) -> PreTrainedTokenizerBase:
    """The run's tokenizer (see the module docstring); ``texts`` feeds a locally trained one."""
    name = model_args.tokenizer_name_or_path or checkpoint
    if name is not None:
        return AutoTokenizer.from_pretrained(name)
    cache = Path(args.output_dir) / "tokenizer"
    with args.main_process_first(desc="tokenizer training"):
        return local_tokenizer(cache, texts(), model_args.tokenizer_vocab_size)


def anchor_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """BOS, else CLS (``editflow_models.special_tokens``): position 0 of every sequence."""
    anchor = anchor_token_id(tokenizer)
    if anchor is None:
        raise ValueError("the tokenizer has neither a BOS nor a CLS token to use as the anchor")
    return anchor


def load_or_build_model(
    model_args: ModelArguments,
    args: EditFlowTrainingArguments,
    checkpoint: str | None,
    tokenizer: PreTrainedTokenizerBase,
):
    """The model to train (an ``EditFlowModel``, or a ``PeftModel`` around one with --lora)."""
    if model_args.load_in_4bit and not model_args.lora:
        raise ValueError("--load_in_4bit trains adapters only: add --lora true")
    dtype = resolve_dtype(model_args.dtype)
    if checkpoint is None:
        model = build_model_from_scratch(
            model_args.arch,
            vocab_size=len(tokenizer),
            anchor_token_id=anchor_id(tokenizer),
            hidden_size=model_args.hidden_size,
            num_layers=model_args.num_layers,
            num_heads=model_args.num_heads,
            intermediate_size=model_args.intermediate_size,
            max_position_embeddings=model_args.max_position_embeddings,
            time_conditioning=model_args.time_conditioning,
            given_embedding=model_args.given_embedding,
            reverse_rates=model_args.reverse_rates,
            mask_token_id=tokenizer.mask_token_id,
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
            scheduler=args.scheduler or "cubic",
            x0=args.x0_sampler or "empty",
        )
        # the tokenizer's special ids in the backbone config, as the Trainer would set them (it
        # warns that they "differ" from a config that was only just built from this tokenizer)
        for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
            if getattr(tokenizer, name) is not None:
                setattr(model.config.text_config, name, getattr(tokenizer, name))
        if dtype != "auto":
            model.to(dtype)
    else:
        kwargs = {"dtype": dtype}
        if model_args.attn_implementation:
            kwargs["attn_implementation"] = model_args.attn_implementation
        model = load_edit_flow_model(
            checkpoint, bits=4 if model_args.load_in_4bit else None, **kwargs
        )
    if args.scheduler:
        model.config.scheduler = args.scheduler
    if args.x0_sampler:
        model.config.x0 = args.x0_sampler
    if args.lam_prop is not None:
        model.config.lam_prop = args.lam_prop
    if model_args.lora:
        model = apply_lora(
            model,
            r=model_args.lora_r,
            alpha=model_args.lora_alpha,
            dropout=model_args.lora_dropout,
            target_modules=model_args.lora_target_modules,
        )
    return model


def base_model(model) -> EditFlowModel:
    """The ``EditFlowModel`` inside a (possibly LoRA-wrapped) model."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model
