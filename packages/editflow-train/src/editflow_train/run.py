"""One training run, ``pt`` or ``sft``.

Data, tokenizer, model, collator, Trainer, final save, samples. ``cli.py`` parses the
configuration and calls ``train``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from editflow_core import make_scheduler, make_x0_sampler
from editflow_models import banned_token_ids, eos_token_id, prefix_ids, render_chat
from transformers import set_seed

from editflow_train.chunking import pretraining_dataset
from editflow_train.collator import EditFlowCollator
from editflow_train.config import DataArguments, EditFlowTrainingArguments, Mode, ModelArguments
from editflow_train.distributed import check_distributed, describe, sampling_model
from editflow_train.final_checkpoint import save_final
from editflow_train.model_setup import (
    anchor_id,
    base_model,
    load_or_build_model,
    load_tokenizer,
    source_checkpoint,
)
from editflow_train.samples import corpus_vocabulary, generate, real_word_fraction
from editflow_train.sft_records import record_messages, sft_dataset
from editflow_train.sources import load_dataset_spec
from editflow_train.trainer import COMPLETE, EditFlowTrainer, TimeBudget, latest_checkpoint

logger = logging.getLogger(__name__)


def _texts(ds, mode: Mode, text_field: str):
    """Raw training texts (for the local tokenizer and the corpus vocabulary)."""
    for record in ds:
        if mode == "pt":
            yield record.get(text_field) or ""
        else:
            messages, response = record_messages(record)
            yield from (m["content"] for m in messages)
            yield response


def resolve_resume(value: str | None, output_dir: str) -> str | None:
    """The checkpoint ``--resume_from_checkpoint`` names.

    'latest' / 'true' -> the newest complete checkpoint (or none); a path must be a complete
    checkpoint.
    """
    if value is None or value.lower() in ("", "false", "none"):
        return None
    if value.lower() in ("latest", "true"):
        found = latest_checkpoint(output_dir)
        if found is None:
            logger.warning("no complete checkpoint in %s: starting from scratch", output_dir)
        return str(found) if found else None
    if not (Path(value) / COMPLETE).is_file():
        raise ValueError(f"{value} is not a complete checkpoint (no {COMPLETE} marker)")
    return value


def check_data(
    model_args: ModelArguments,
    data: DataArguments,
    args: EditFlowTrainingArguments,
    mode: Mode = "pt",
) -> None:
    """Raise ValueError on settings that cannot work together."""
    if data.streaming and args.max_steps <= 0:
        raise ValueError("--streaming true needs --max_steps > 0 (a stream has no length)")
    if data.source_field is not None and mode != "pt":
        raise ValueError("--source_field is for pt (draft -> final text pairs), not sft")


def build_datasets(mode, data, tokenizer, anchor, eos, train_raw, test_raw):
    """Tokenized train / eval datasets."""

    def prepare(ds):
        if mode == "pt":
            return pretraining_dataset(
                ds,
                tokenizer,
                anchor_token_id=anchor,
                eos_token_id=eos,
                text_field=data.text_field,
                max_length=data.max_length,
                num_proc=data.preprocessing_num_workers,
                pack=data.pack,
                source_field=data.source_field,
            )
        return sft_dataset(
            ds,
            tokenizer,
            anchor_token_id=anchor,
            eos_token_id=eos,
            max_length=data.max_length,
            truncation=data.sft_truncation,
            num_proc=data.preprocessing_num_workers,
        )

    train = prepare(train_raw)
    if not data.streaming and len(train) == 0:
        raise ValueError(
            f"dataset {data.dataset!r} yields no training sequences after tokenization"
        )
    return train, (prepare(test_raw) if test_raw is not None else None)


def sample_prefixes(mode, tokenizer, anchor, prompts, n) -> list[list[int]]:
    """Frozen prefixes for the end-of-run samples: the anchor (pt) or chat prompts (sft)."""
    if mode == "pt":
        return [[anchor]] * n
    return [
        prefix_ids(anchor, tokenizer, render_chat(tokenizer, [{"role": "user", "content": p}]))
        for p in prompts[:n]
    ]


def train(
    mode: Mode, model_args: ModelArguments, data: DataArguments, args: EditFlowTrainingArguments
) -> Path:
    """Run training end to end; returns the path of ``checkpoint-final``."""
    check_data(model_args, data, args, mode)
    if args.torch_num_threads:
        torch.set_num_threads(args.torch_num_threads)
    set_seed(args.seed)
    train_raw, test_raw = load_dataset_spec(data.dataset, data.streaming, data.txt_sample_by)
    if data.eval_dataset:
        test_raw = load_dataset_spec(data.eval_dataset, data.streaming, data.txt_sample_by)[0]
    if not data.streaming and len(train_raw) == 0:
        raise ValueError(f"dataset {data.dataset!r} is empty")

    checkpoint = source_checkpoint(model_args, args)
    tokenizer = load_tokenizer(
        model_args, args, checkpoint, lambda: _texts(train_raw, mode, data.text_field)
    )
    model = load_or_build_model(model_args, args, checkpoint, tokenizer)
    config = base_model(model).config
    eos = eos_token_id(tokenizer)
    if eos is None:
        raise ValueError("the tokenizer has no EOS (or SEP) token to end texts with")
    anchor = config.anchor_token_id if config.anchor_token_id is not None else anchor_id(tokenizer)

    with args.main_process_first(desc="tokenization"):
        train_ds, eval_ds = build_datasets(mode, data, tokenizer, anchor, eos, train_raw, test_raw)
    special = banned_token_ids(tokenizer, eos)  # random x0 tokens: what sampling may draw
    scheduler = make_scheduler(config.scheduler)
    lam_prop = float(getattr(config, "lam_prop", 0.0))
    if lam_prop and getattr(config, "reverse_rates", False):
        raise ValueError(
            "reverse rates are learned on plain paths only (lam_prop = 0): a localized path's "
            "reversal has no closed-form rates"
        )
    collator = EditFlowCollator(
        x0_sampler=make_x0_sampler(config.x0),
        scheduler=scheduler,
        pad_token_id=config.pad_token_id or 0,
        mask_token_id=tokenizer.mask_token_id,
        vocab_size=len(tokenizer),
        special_ids=special,
        coupling=args.coupling,
        gaps=args.gaps,
        t_eps=args.t_eps,
        max_tokens_per_forward=args.max_tokens_per_forward,
        cond_drop=args.cond_drop,
        cond_prefix=args.cond_prefix,
        lam_prop=lam_prop,
        fim=args.fim,
        edit_x0=make_x0_sampler(args.edit_x0) if args.edit_x0 else None,
        edit_share=args.edit_share if args.edit_x0 else 0.0,
        end_ids=[eos],
    )
    trainer = EditFlowTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        data_collator=collator,
        processing_class=tokenizer,
        scheduler=scheduler,
        normalize=args.normalize,
        max_weight=args.max_weight,
    )
    check_distributed(trainer.accelerator, lora=model_args.lora)
    if args.max_train_seconds:
        trainer.add_callback(TimeBudget(args.max_train_seconds))
    resume = resolve_resume(args.resume_from_checkpoint, args.output_dir)
    resumed_from = (
        json.loads((Path(resume) / "trainer_state.json").read_text())["global_step"]
        if resume
        else 0
    )
    if resume and trainer.is_world_process_zero():
        print(f"resuming from {resume} (step {resumed_from})")
    result = trainer.train(resume_from_checkpoint=resume)
    final = save_final(
        trainer,
        tokenizer,
        lora=model_args.lora,
        quantized=model_args.load_in_4bit,
        base_checkpoint=checkpoint,
    )
    if trainer.is_world_process_zero():
        summary = {
            "train_loss": result.training_loss,
            "global_step": result.global_step,
            "resumed_from_step": resumed_from,
            "num_processes": trainer.accelerator.num_processes,
            **describe(trainer.accelerator),
            "epoch": trainer.state.epoch,
            "train_sequences": None if data.streaming else len(train_ds),
            "eval_loss": next(
                (e["eval_loss"] for e in reversed(trainer.state.log_history) if "eval_loss" in e),
                None,
            ),
            "train_runtime": result.metrics.get("train_runtime"),
        }
        for key in ("eval_nll_bound", "eval_bpc"):
            summary[key] = next(
                (e[key] for e in reversed(trainer.state.log_history) if key in e), None
            )
        if args.num_samples > 0:
            summary |= report_samples(
                mode, trainer, final, tokenizer, anchor, data, args, train_raw, test_raw
            )
        if args.nll_bound_samples > 0 and eval_ds is not None and not data.streaming:
            summary["heldout_bound"] = report_bound(trainer, final, tokenizer, eval_ds, args)
        (Path(args.output_dir) / "summary.json").write_text(json.dumps(summary, indent=2))
        print(f"checkpoint: {final}")
    trainer.accelerator.end_training()
    return final


def report_bound(trainer, final, tokenizer, eval_ds, args) -> dict:
    """Print the held-out likelihood bound of the final model; returns it for summary.json."""
    from editflow_models import generation_setup

    from editflow_train.evaluation import format_bound, heldout_bound

    setup = generation_setup(sampling_model(trainer, final), tokenizer)
    result = heldout_bound(
        setup,
        eval_ds,
        samples=args.nll_bound_samples,
        max_sequences=args.nll_bound_max_sequences,
        seed=args.seed,
        batch_size=args.per_device_eval_batch_size,
    )
    print(format_bound(result))
    return result


def report_samples(
    mode, trainer, final, tokenizer, anchor, data, args, train_raw, test_raw
) -> dict:
    """Print samples (and, for pt, the real-word fraction); returns them for summary.json.

    Main process only; under ZeRO-3 / FSDP the samples come from ``final`` (see
    ``distributed.sampling_model``).
    """
    model = sampling_model(trainer, final)
    prompts = args.sample_prompts
    if mode == "sft" and not prompts:
        source = test_raw if test_raw is not None else train_raw
        prompts = [
            record_messages(r)[0][-1]["content"] for _, r in zip(range(args.num_samples), source)
        ]
    prefixes = sample_prefixes(mode, tokenizer, anchor, prompts or [], args.num_samples)
    texts = generate(
        model,
        tokenizer,
        prefixes,
        steps=args.sample_steps,
        max_new_tokens=args.sample_max_new_tokens,
        temperature=args.sample_temperature,
        top_p=args.sample_top_p,
        seed=args.seed,
    )
    out: dict = {"samples": texts}
    for i, text in enumerate(texts):
        head = f"--- sample {i}" + (f" | prompt: {prompts[i]!r}" if mode == "sft" else "")
        print(f"{head}\n{text.strip()}\n")
    if mode == "pt" and not data.streaming:
        vocab = corpus_vocabulary(_texts(train_raw, mode, data.text_field))
        out["real_word_fraction"] = real_word_fraction(texts, vocab)
        print(
            f"real-word fraction: {out['real_word_fraction']:.3f} "
            "(share of generated words found in the training corpus)"
        )
    return out
