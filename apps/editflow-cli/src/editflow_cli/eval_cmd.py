"""``editflow eval``: a held-out likelihood bound of a checkpoint, in bits per character.

Loads the data the way ``editflow-train`` does (same dataset specs, same chunking), scores the
first ``--max-sequences`` sequences with the model's upper bound on -log p
(``editflow_core.nll_bound``), and prints one line: bits per character and nats per token,
each with its Monte Carlo standard error. ``--json`` prints the numbers as JSON on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.progress import Progress

from editflow_cli.errors import CliError
from editflow_cli.generate import add_model_arg, resolve_model

EXAMPLES = """examples:
  editflow eval --model runs/quickstart/checkpoint-final \\
      --data "data/tiny-shakespeare.txt[train:7000,test:200]" --max-length 64
  editflow eval --model DIR --data data/chat-seed-tasks.jsonl --mode sft --json

The quickstart prints the same number for its test split at the end of training; use the
training run's --max-length (the quickstart's is 64) to get the same chunks.
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``eval`` command to the ``editflow`` parser."""
    p = sub.add_parser(
        "eval",
        help="held-out likelihood bound (bits per character) of a checkpoint",
        description="Estimate an upper bound on the negative log-likelihood of held-out text "
        "under an Edit Flow model, in bits per character and nats per token.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arg(p)
    p.add_argument(
        "--data",
        required=True,
        help="dataset spec as for editflow-train: a file/folder or hub id, with an optional "
        "'[train:N,test:M]' slice; its test split is scored when it has one",
    )
    p.add_argument(
        "--split",
        choices=("test", "train"),
        default=None,
        help="which split to score (default: test if the spec has one, else train)",
    )
    p.add_argument(
        "--mode",
        choices=("pt", "sft"),
        default="pt",
        help="pt: raw text (default); sft: prompt/response records, the prompt given",
    )
    p.add_argument(
        "--max-length",
        type=int,
        default=512,
        help="tokens per sequence, anchor and EOS included (default 512)",
    )
    p.add_argument(
        "--no-pack",
        action="store_true",
        help="pt: one sequence per document instead of packed chunks",
    )
    p.add_argument(
        "--text-field", default="text", help="pt: the column holding the text (default text)"
    )
    p.add_argument(
        "--txt-sample-by",
        choices=("line", "paragraph", "document"),
        default="paragraph",
        help="how a .txt file splits into documents (default paragraph)",
    )
    p.add_argument(
        "--samples", type=int, default=8, help="Monte Carlo samples per sequence (default 8)"
    )
    p.add_argument(
        "--max-sequences",
        type=int,
        default=256,
        help="score the first N sequences (default 256; 0: all)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the Monte Carlo draws (default 0)")
    p.add_argument(
        "--batch-size", type=int, default=64, help="sequences per forward pass (default 64)"
    )
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.set_defaults(run=run)


def load_records(args: argparse.Namespace, setup) -> list[dict]:
    """The tokenized sequences to score, chunked as editflow-train chunks them."""
    from editflow_models import eos_token_id
    from editflow_train.chunking import pretraining_dataset
    from editflow_train.sft_records import sft_dataset
    from editflow_train.sources import load_dataset_spec

    train, test = load_dataset_spec(args.data, False, args.txt_sample_by)
    split = args.split or ("test" if test is not None else "train")
    if split == "test" and test is None:
        raise CliError(
            f"dataset {args.data!r} has no test split: give '[train:N,test:M]' or --split train"
        )
    raw = test if split == "test" else train
    eos = eos_token_id(setup.tokenizer)
    if eos is None:
        raise CliError("the checkpoint's tokenizer has no EOS token")
    if args.mode == "pt":
        ds = pretraining_dataset(
            raw, setup.tokenizer, anchor_token_id=setup.anchor_token_id, eos_token_id=eos,
            text_field=args.text_field, max_length=args.max_length, pack=not args.no_pack,
        )  # fmt: skip
    else:
        ds = sft_dataset(
            raw, setup.tokenizer, anchor_token_id=setup.anchor_token_id, eos_token_id=eos,
            max_length=args.max_length,
        )  # fmt: skip
    return list(ds)


def run(args: argparse.Namespace) -> int:
    """``editflow eval``: score the held-out records and print the bound; returns the exit code."""
    if args.samples < 1:
        raise CliError(f"--samples must be >= 1, got {args.samples}")
    if args.max_length < 2:
        raise CliError(f"--max-length must be >= 2, got {args.max_length}")
    folder = resolve_model(args.model)
    import datasets
    import transformers
    from editflow_models import load_generation_setup
    from editflow_train.evaluation import format_bound, heldout_bound

    datasets.disable_progress_bars()  # one bar of our own, on stderr
    transformers.utils.logging.disable_progress_bar()

    setup = load_generation_setup(folder, device=args.device, dtype=args.dtype)
    if args.max_length > setup.max_length:
        raise CliError(
            f"--max-length {args.max_length} exceeds the model's context of {setup.max_length}"
        )
    records = load_records(args, setup)
    if not records:
        raise CliError(f"dataset {args.data!r} yields no sequence to score")
    limit = args.max_sequences or None
    with Progress(transient=True, disable=args.json or not sys.stderr.isatty()) as bar:
        task = bar.add_task("scoring", total=None)
        result = heldout_bound(
            setup, records, samples=args.samples, max_sequences=limit, seed=args.seed,
            batch_size=args.batch_size,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )  # fmt: skip
    result |= {"model": str(Path(folder)), "data": args.data, "samples": args.samples}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_bound(result))
    return 0
