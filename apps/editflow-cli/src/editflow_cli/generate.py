"""``editflow generate``: one-shot generation from a local checkpoint.

The text alone goes to stdout so it can be piped; progress, statistics and the optional trace
go to stderr (or the trace to ``--trace-file``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch
from editflow_core import GenerationResult, SamplingParams
from rich.progress import Progress

from editflow_cli.errors import CliError
from editflow_cli.render import describe_step

DEFAULT_MODEL = Path("runs/quickstart/checkpoint-final")
EXAMPLES = """examples:
  editflow generate --model runs/quickstart/checkpoint-final --prompt "ROMEO:" --seed 0
  editflow generate --model DIR --steps 128 --temperature 0.8 --trace
  editflow generate --model DIR --prompt "KING:" --guidance 1.5
  editflow generate --model DIR --steps 32 --correction 0.5
  editflow generate --model DIR --prompt "To be, or " --suffix " is the question"
  editflow generate --model DIR --prompt "To be" --trace --trace-file trace.txt > text.txt
"""


DTYPES = ("auto", "fp32", "bf16", "fp16")  # editflow_models.dtypes.CHOICES (imported lazily)


def add_model_arg(parser: argparse.ArgumentParser) -> None:
    """--model and --dtype."""
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help=f"Edit Flow checkpoint folder (default: {DEFAULT_MODEL} when it exists)",
    )
    parser.add_argument(
        "--dtype",
        choices=DTYPES,
        default="auto",
        help="weight dtype: auto (as saved, default), fp32, bf16 or fp16 (see the README for "
        "which is faster where)",
    )


def sampling_default(name: str):
    """``SamplingParams``' default for ``name``: the one source of the sampling defaults."""
    return {f.name: f.default for f in dataclasses.fields(SamplingParams)}[name]


def add_sampling_args(parser: argparse.ArgumentParser) -> None:
    """Sampling flags shared by generate and chat (defaults: ``SamplingParams``')."""
    d = sampling_default
    a = parser.add_argument
    a("--steps", type=int, default=d("steps"), help="tau-leaping steps (default %(default)s)")
    a("--seed", type=int, default=None, help="random seed (default: random)")
    a(
        "--temperature",
        type=float,
        default=d("temperature"),
        help="0 is greedy (default %(default)s)",
    )
    a("--top-k", type=int, default=d("top_k"), help="keep the k likeliest tokens (0: all)")
    a("--top-p", type=float, default=d("top_p"), help="nucleus mass to keep (default %(default)s)")
    a(
        "--max-new-tokens",
        type=int,
        default=d("max_new_tokens"),
        help="cap on generated tokens (default %(default)s)",
    )
    a(
        "--guidance",
        type=float,
        default=d("guidance_scale"),
        help="classifier-free guidance scale g >= 0 for a prompt (0: off, the default); needs a "
        "model trained with cond_drop > 0",
    )
    a(
        "--correction",
        type=float,
        default=d("correction"),
        help="predictor-corrector strength c >= 0 (0: off, the default): each step leaps "
        "forward to t + h (1 + a_t), a_t = c t (1 - t), then back with the model's reverse rates; "
        "one more forward per corrected step; needs a model trained with reverse_rates: true",
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``generate`` command to the ``editflow`` parser."""
    p = sub.add_parser(
        "generate",
        help="generate text from a local checkpoint",
        description="Generate text with an Edit Flow model. The text goes to stdout; progress and "
        "statistics to stderr.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arg(p)
    p.add_argument("--prompt", default="", help="text to continue (default: generate from scratch)")
    p.add_argument(
        "--suffix",
        default=None,
        help="fill in the middle: text that must follow the generated text (which goes between "
        "--prompt and --suffix; stdout gets the middle); best with a model trained with fim > 0",
    )
    add_sampling_args(p)
    p.add_argument("--trace", action="store_true", help="print the edit trajectory to stderr")
    p.add_argument("--trace-file", type=Path, default=None, help="write the trajectory to a file")
    p.add_argument("--quiet", action="store_true", help="no progress bar or statistics")
    p.set_defaults(run=run)


def resolve_model(path: Path | None) -> Path:
    """The checkpoint folder to load, or a CliError saying how to get one."""
    folder = path if path is not None else DEFAULT_MODEL
    if not (folder / "config.json").is_file():
        hint = (
            "train one with `uv run editflow-train pt --config configs/pt/quickstart.yaml` "
            "or convert one with `uv run editflow convert --model SRC --output DIR`"
        )
        raise CliError(f"no Edit Flow checkpoint at {folder}: {hint}")
    return folder


def load(path: Path | None, dtype: str = "auto"):
    """Load a checkpoint for generation (lazy import: transformers is slow to import)."""
    from editflow_models import load_generation_setup

    return load_generation_setup(resolve_model(path), dtype=dtype)


def sampling_params(args: argparse.Namespace, trace: bool) -> SamplingParams:
    """The ``SamplingParams`` of the sampling flags, or a CliError naming the bad flag."""
    params = SamplingParams(
        steps=args.steps,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
        trace=trace,
        guidance_scale=getattr(args, "guidance", 0.0),
        correction=getattr(args, "correction", 0.0),
    )
    try:
        params.validate()
    except ValueError as err:
        raise CliError(str(err).replace("sampling parameter ", "--").replace("_", "-")) from None
    return params


def run_one(
    setup,
    prefix: list[int],
    params: SamplingParams,
    on_step=None,
    *,
    draft: str | None = None,
    suffix: str | None = None,
) -> GenerationResult:
    """Run one sequence to the end, calling ``on_step(result_so_far_tokens, trace_step)``.

    x0 comes from ``setup.start`` (the same seed gives the same text as the server); ``draft``:
    text to edit instead; ``suffix``: text the generated middle must lead into.
    """
    if params.correction > 0 and not setup.has_reverse_rates:
        raise CliError(
            "--correction needs a model trained with reverse_rates: true; this checkpoint has no "
            "reverse rates (leave --correction at 0)"
        )
    seed = params.seed if params.seed is not None else int(torch.randint(2**31, (1,)))
    params.seed = seed
    start = setup.start(prefix, seed, draft=draft, suffix=suffix)
    given = len(start.prefix) + len(start.suffix)
    room = setup.max_length - given
    if room < 1:
        raise CliError(
            f"the prompt and suffix take {given} of the model's {setup.max_length} tokens, "
            "leaving no room to write: shorten them"
        )
    budget = min(params.max_new_tokens, room)
    if not start.draft:  # a drawn x0 is cut to the budget, as the server does
        start.x0 = start.x0[:budget]
    elif len(start.x0) > budget:
        limit = (
            f"--max-new-tokens {params.max_new_tokens}: raise --max-new-tokens"
            if budget == params.max_new_tokens
            else f"the {room} tokens the model's context leaves after the prompt: shorten it"
        )
        raise CliError(f"the draft is {len(start.x0)} tokens, more than {limit}")
    sampler = setup.sampler()
    start.add_to(sampler, params, key=0)
    while True:
        now = sampler.progress(0)
        before = now.tokens if now else start.prefix + start.x0 + start.suffix
        done = sampler.step()
        if on_step is not None:
            trace = done[0].trace if done else sampler.progress(0).trace
            on_step(before, trace[-1] if trace else None)
        if done:
            return done[0]


def run_with_progress(
    setup, prefix: list[int], params: SamplingParams, args: argparse.Namespace, trace_out,
    *, edits_only: bool = False, draft: str | None = None, suffix: str | None = None,
) -> GenerationResult:  # fmt: skip
    """``run_one`` under a progress bar (off with ``--quiet`` or without a terminal).

    Each step's edits go to ``trace_out`` when given (``edits_only``: steps with edits only).
    """
    with Progress(transient=True, disable=args.quiet or not sys.stderr.isatty()) as bar:
        task = bar.add_task("editing", total=params.steps)

        def on_step(_before, step):
            bar.advance(task)
            if trace_out is not None and step is not None and (step.edits or not edits_only):
                print(describe_step(step, setup.decode), file=trace_out)

        return run_one(setup, prefix, params, on_step, draft=draft, suffix=suffix)


def print_result(setup, result: GenerationResult, params: SamplingParams, args, finish: bool):
    """The text to stdout; unless ``--quiet``, its statistics to stderr."""
    sys.stdout.write(setup.decode(result.completion) + "\n")
    if not args.quiet:
        end = f", finish: {result.finish_reason}" if finish else ""
        print(
            f"[{result.steps} steps, {result.forward_passes} forward passes, "
            f"+{result.n_ins} -{result.n_del} ~{result.n_sub}, seed {params.seed}{end}]",
            file=sys.stderr,
        )


def run(args: argparse.Namespace) -> int:
    """``editflow generate``: generate one text, print it; returns the exit code."""
    setup = load(args.model, args.dtype)
    params = sampling_params(args, trace=args.trace or args.trace_file is not None)
    prefix = setup.text_prefix(args.prompt)
    trace_out = (
        open(args.trace_file, "w") if args.trace_file else (sys.stderr if args.trace else None)
    )
    try:
        result = run_with_progress(setup, prefix, params, args, trace_out, suffix=args.suffix)
    finally:
        if args.trace_file:
            trace_out.close()
    print_result(setup, result, params, args, finish=True)
    return 0
