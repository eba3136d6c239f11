"""``editflow-train {pt,sft} [--config file.yaml] [--field value ...]``.

Configuration = ``ModelArguments`` + ``DataArguments`` + ``EditFlowTrainingArguments``, all
flat: a YAML file sets fields by name and the command line overrides any of them. YAML values
are turned into command-line tokens and parsed by the same ``HfArgumentParser`` as the command
line, so both get the same type checks. Errors (unknown key, wrong type, missing required
field, invalid spec string) exit with status 2 and a message naming the field and, for an
unknown key, the closest valid one.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

import torch
import yaml
from transformers import HfArgumentParser

from editflow_train.config import DataArguments, EditFlowTrainingArguments, ModelArguments

DATACLASSES = (ModelArguments, DataArguments, EditFlowTrainingArguments)
MODES = {
    "pt": "continual / from-scratch pretraining on raw text",
    "sft": "supervised fine-tuning on alpaca or chat records (prompt frozen)",
}


class ConfigError(ValueError):
    """A configuration problem the user must fix; the message names the field."""


def field_names() -> list[str]:
    """Every configurable field name."""
    return [f.name for dc in DATACLASSES for f in fields(dc) if f.init]


def unknown_key_message(key: str, where: str) -> str:
    """The error for an unknown config key: 'unknown key X in WHERE; did you mean Y?'."""
    close = difflib.get_close_matches(key, field_names(), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else "; see --help for the valid fields"
    return f"unknown key {key!r} in {where}{hint}"


def yaml_tokens(path: str) -> list[str]:
    """A YAML config as command-line tokens (``--key value``), checking every key."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"config file {path} not found")
    data = yaml.safe_load(file.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of field: value")
    valid = set(field_names())
    tokens: list[str] = []
    for key, value in data.items():
        if key not in valid:
            raise ConfigError(unknown_key_message(str(key), path))
        if value is None:
            continue
        if isinstance(value, bool):
            tokens += [f"--{key}", str(value).lower()]
        elif isinstance(value, list):
            tokens += [f"--{key}", *map(str, value)]
        elif isinstance(value, dict):
            tokens += [f"--{key}", json.dumps(value)]
        else:
            tokens += [f"--{key}", str(value)]
    return tokens


def build_parser(mode: str) -> HfArgumentParser:
    """The parser of one subcommand (its --help lists every field with its help)."""
    parser = HfArgumentParser(DATACLASSES, prog=f"editflow-train {mode}", description=MODES[mode])
    parser.add_argument(
        "--config", default=None, help="YAML file of field: value (CLI overrides it)."
    )
    return parser


def check_specs(args: EditFlowTrainingArguments) -> None:
    """Validate the spec strings early, naming the field."""
    from editflow_core import make_scheduler, make_x0_sampler

    for name, make in (("x0_sampler", make_x0_sampler), ("scheduler", make_scheduler)):
        value = getattr(args, name)
        if value is not None:
            try:
                make(value)
            except ValueError as err:
                raise ConfigError(f"--{name}: {err}") from None


def parse(
    mode: str, argv: Sequence[str]
) -> tuple[ModelArguments, DataArguments, EditFlowTrainingArguments]:
    """Parse ``[--config file] [--field value ...]`` into the three dataclasses.

    Raises:
        ConfigError: unknown key, invalid spec or a TrainingArguments consistency error.
        SystemExit: argparse's own errors (wrong type, missing required field), status 2.
    """
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    known, cli = pre.parse_known_args(list(argv))
    tokens = (yaml_tokens(known.config) if known.config else []) + cli
    parser = build_parser(mode)
    try:
        model_args, data_args, args, config, rest = parser.parse_args_into_dataclasses(
            args=tokens, return_remaining_strings=True
        )
    except ValueError as err:  # raised by a dataclass __post_init__ (TrainingArguments checks)
        raise ConfigError(str(err)) from None
    for token in rest:
        if token.startswith("--"):
            raise ConfigError(unknown_key_message(token[2:].split("=")[0], "the command line"))
    if rest:
        raise ConfigError(f"unexpected argument {rest[0]!r}")
    check_specs(args)
    if model_args.dtype == "fp16":
        raise ConfigError(
            "--dtype fp16: fp16 weights cannot be trained stably (gradient underflow, no loss "
            "scaling for fp16 parameters); use --dtype fp32 --fp16 true (autocast) or --dtype bf16"
        )
    if not 0 <= args.cond_drop <= 1:
        raise ConfigError(f"--cond_drop must be in [0, 1], got {args.cond_drop}")
    budget = args.max_tokens_per_forward
    if budget < 0 or 0 < budget < data_args.max_length:
        raise ConfigError(
            f"--max_tokens_per_forward must be 0 (off) or at least max_length "
            f"({data_args.max_length}), got {budget}"
        )
    # a batch is a sampled path (its edit lists are not per-row tensors): every process collates
    # its own batches; accelerate's default for streams (process 0's batch sliced along dim 0)
    # would cut the edit lists wrongly
    args.accelerator_config.dispatch_batches = False
    if args.use_cpu or not torch.accelerator.is_available():
        args.dataloader_pin_memory = False  # nothing to pin for (torch warns once per loader)
    return model_args, data_args, args


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in MODES:
        usage = "usage: editflow-train {pt,sft} [--config FILE.yaml] [--FIELD VALUE ...]\n"
        usage += "".join(f"  {m:4} {d}\n" for m, d in MODES.items())
        if argv and argv[0] in ("-h", "--help"):
            print(usage + "run 'editflow-train pt --help' for every field")
            return 0
        print(
            usage + (f"error: unknown command {argv[0]!r}" if argv else "error: no command"),
            file=sys.stderr,
        )
        return 2
    mode = argv[0]
    try:
        model_args, data_args, args = parse(mode, argv[1:])
    except ConfigError as err:
        print(f"editflow-train {mode}: error: {err}", file=sys.stderr)
        return 2
    from editflow_train.run import train

    try:
        train(mode, model_args, data_args, args)
    except ValueError as err:
        print(f"editflow-train {mode}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
