"""``editflow convert`` and ``editflow a2d``: thin wrappers over editflow-models."""

from __future__ import annotations

import argparse
from pathlib import Path

from editflow_cli.generate import DTYPES

CONVERT_EXAMPLES = """examples:
  editflow convert --model answerdotai/ModernBERT-large --output ckpt/modernbert-ef
  editflow convert --model ./my-bert --output ckpt/bert-ef --x0 "masks[length:64]"
  editflow convert --model ckpt/qwen3-a2d --output ckpt/qwen3-ef --scheduler cubic
  editflow convert --model GSAI-ML/LLaDA-8B-Base --output ckpt/llada-ef --dtype bf16
"""
A2D_EXAMPLES = """examples:
  editflow a2d --model Qwen/Qwen3-0.6B --output ckpt/qwen3-a2d
  editflow convert --model ckpt/qwen3-a2d --output ckpt/qwen3-ef
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``convert`` and ``a2d`` commands to the ``editflow`` parser."""
    p = sub.add_parser(
        "convert",
        help="turn a pretrained masked LM, LLaDA, Dream or a2d model into an Edit Flow model",
        description="Convert a supported checkpoint (local folder or hub id) into an Edit Flow "
        "checkpoint, keeping every source weight; prints what was copied and what is new.",
        epilog=CONVERT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, help="source checkpoint: a local folder or a hub id")
    p.add_argument(
        "--output", required=True, type=Path, help="folder to write the Edit Flow checkpoint to"
    )
    p.add_argument(
        "--scheduler",
        default="cubic",
        help="kappa scheduler spec stored in the config (default cubic)",
    )
    p.add_argument(
        "--x0",
        default="empty",
        help='x0 spec stored in the config, e.g. "masks[length:64]" (default empty)',
    )
    p.add_argument(
        "--time-conditioning", action="store_true", help="add a (zero-initialised) time embedding"
    )
    p.add_argument(
        "--anchor-token-id",
        type=int,
        help="id at position 0 of every sequence (default: BOS, else CLS)",
    )
    p.add_argument(
        "--mask-token-id",
        type=int,
        help="mask token id (default: the tokenizer's, else the config's)",
    )
    p.add_argument(
        "--pad-token-id", type=int, help="padding id (default: the tokenizer's, else the config's)"
    )
    p.add_argument(
        "--dtype",
        choices=DTYPES,
        default="auto",
        help="dtype of the saved weights (default auto: the source's)",
    )
    p.set_defaults(run=run_convert)

    p = sub.add_parser(
        "a2d",
        help="make a causal Qwen2 / Qwen3 / Llama checkpoint bidirectional (same weights)",
        description="Save a causal Qwen2 / Qwen3 / Llama checkpoint in its bidirectional form.",
        epilog=A2D_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, help="causal checkpoint: a local folder or a hub id")
    p.add_argument("--output", required=True, type=Path, help="folder to write to")
    p.set_defaults(run=run_a2d)


def run_convert(args: argparse.Namespace) -> int:
    """``editflow convert``: convert a checkpoint and print the report; returns 0."""
    from editflow_models import convert

    report = convert(
        args.model,
        args.output,
        scheduler=args.scheduler,
        x0=args.x0,
        time_conditioning=args.time_conditioning,
        anchor_token_id=args.anchor_token_id,
        mask_token_id=args.mask_token_id,
        pad_token_id=args.pad_token_id,
        dtype=args.dtype,
    )
    print(report)
    return 0


def run_a2d(args: argparse.Namespace) -> int:
    """``editflow a2d``: save a causal checkpoint in its bidirectional form; returns 0."""
    from editflow_models import a2d

    out = a2d(args.model, args.output)
    print(f"wrote the bidirectional checkpoint to {out}")
    return 0
