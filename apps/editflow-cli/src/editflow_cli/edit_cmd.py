"""``editflow edit``: let a model edit a draft in place.

The draft is x0: the model starts from it and inserts, deletes and substitutes tokens until
t = 1. The edited text goes to stdout; ``--trace`` shows each step's edits on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from editflow_cli.errors import CliError
from editflow_cli.generate import (
    add_model_arg,
    add_sampling_args,
    load,
    print_result,
    run_with_progress,
    sampling_default,
    sampling_params,
)

EXAMPLES = """examples:
  editflow edit --model runs/quickstart-edit/checkpoint-final --draft draft.txt
  echo "To be, or not to bee, that is the qeustion" | editflow edit --model DIR --draft - --trace
  editflow edit --model DIR --draft draft.txt --prompt "HAMLET:" --steps 32 --seed 0
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``edit`` command to the ``editflow`` parser."""
    p = sub.add_parser(
        "edit",
        help="edit a draft with a local checkpoint",
        description="Edit a draft with an Edit Flow model: the draft is where the process "
        "starts (x0), the model's edits take it to a finished text. The text goes to stdout; "
        "progress and statistics to stderr. Best with a model trained to repair "
        "(edit_x0: corrupt[p:0.2], or draft -> final pairs with source_field).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arg(p)
    p.add_argument(
        "--draft",
        required=True,
        help="the text to edit: a file, or - for stdin (a final newline is dropped)",
    )
    p.add_argument("--prompt", default="", help="given text before the draft (never edited)")
    add_sampling_args(p)
    for action in p._actions:  # its default depends on the draft
        if action.dest == "max_new_tokens":
            action.help = (
                "cap on the edited text's tokens (default: twice the draft's, at least "
                f"{sampling_default('max_new_tokens')}); a longer draft is an error"
            )
    p.add_argument("--trace", action="store_true", help="print each step's edits to stderr")
    p.add_argument("--quiet", action="store_true", help="no progress bar or statistics")
    p.set_defaults(run=run, max_new_tokens=None)


def read_draft(source: str) -> str:
    """The draft text from a file or stdin ("-"), without one final newline."""
    if source == "-":
        text = sys.stdin.read()
    else:
        path = Path(source)
        if not path.is_file():
            raise CliError(f"no draft file at {path} (use --draft - to read stdin)")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise CliError(f"the draft file {path} is not UTF-8 text") from None
    return text[:-1] if text.endswith("\n") else text


def run(args: argparse.Namespace) -> int:
    """``editflow edit``: edit the draft, print the text; returns the exit code."""
    draft = read_draft(args.draft)
    setup = load(args.model, args.dtype)
    if args.max_new_tokens is None:  # room for the draft and as much again, as the server gives
        n_draft = len(setup.tokenizer(draft, add_special_tokens=False)["input_ids"])
        args.max_new_tokens = max(2 * n_draft, sampling_default("max_new_tokens"))
    params = sampling_params(args, trace=args.trace)
    prefix = setup.text_prefix(args.prompt)
    trace_out = sys.stderr if args.trace else None
    result = run_with_progress(setup, prefix, params, args, trace_out, edits_only=True, draft=draft)
    print_result(setup, result, params, args, finish=False)
    return 0
