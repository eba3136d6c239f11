"""Training throughput of the quickstart model, and where a step's time goes; ragged batches.

    uv run python benchmarks/bench_train.py [--steps 30] [--threads 1]
    uv run python benchmarks/bench_train.py --ragged [--steps 12]

Two pipelines on the same model, data and batch size (the quickstart's: ModernBERT 4 x 128,
BPE 8192, x1 = 64 tokens, x0 = masks[length:64], batch 32):

- ``editflow-train``: ``EditFlowCollator`` (x0 + closed-form alignment + path) runs in one
  DataLoader worker, off the training process's critical path.
- ``python-dp in step``: the same path, but each (x0, x1) pair is aligned by a pure-Python
  Levenshtein DP inside the training step (what an implementation without a collator does).

Per step it times: waiting for the batch (data), the model forward, the loss, the backward and
the optimizer step. "outside model" = (data + loss) / step: the share the issue bounds by 10%.

``--ragged``: x1 sequences per second with ragged batches (``max_tokens_per_forward``: rows
grouped by x_t length, several forwards per step) against one padded forward, same model
(quickstart shape), same 16 x1 rows per step, same paths; padded and ragged steps interleaved
in one run, so the ratio is fair on a noisy machine. Two settings: x0 = empty with kappa = t^3 at
L = 512, and x0 = masks[length:64] at L = 128 (the reference implementation's setting).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from editflow_core import (
    BLANK,
    AlignedBatch,
    PathSample,
    edit_flow_loss,
    make_scheduler,
    make_x0_sampler,
    path_totals,
    sample_path,
    split_by_length,
)
from editflow_models import build_model_from_scratch
from editflow_testing.reference import needleman_wunsch  # the pure-Python DP baseline
from editflow_train.chunking import pretraining_dataset
from editflow_train.collator import PATH_FIELDS, EditFlowCollator
from editflow_train.sources import load_dataset_spec
from editflow_train.tokenizer import local_tokenizer
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]


def python_dp_path(examples, collator: EditFlowCollator) -> dict[str, torch.Tensor]:
    """The baseline's in-step path: per-example Python alignment, then the core path sampler."""
    rows0, rows1, frozen = [], [], []
    for ex in examples:
        x1, f = ex["input_ids"], ex["frozen"]
        x0 = collator.x0(x1, f).tolist()
        z0, z1 = needleman_wunsch(x0[f:], x1[f:])
        rows0.append(torch.tensor(x1[:f] + z0))
        rows1.append(torch.tensor(x1[:f] + z1))
        frozen.append(f)
    pad = torch.nn.utils.rnn.pad_sequence
    batch = AlignedBatch(
        pad(rows0, batch_first=True, padding_value=BLANK),
        pad(rows1, batch_first=True, padding_value=BLANK),
        torch.tensor(frozen),
    )
    path = sample_path(batch, collator.scheduler, t_eps=collator.t_eps, pad_token_id=0)
    return {name: getattr(path, name) for name in PATH_FIELDS}


def timed_steps(model, batches, steps: int, scheduler, in_step=None) -> dict[str, float]:
    """Run ``steps`` optimizer steps; per-phase seconds and x_t tokens."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    times = dict.fromkeys(("data", "forward", "loss", "backward", "optimizer"), 0.0)
    tokens, it = 0, iter(batches)
    for step in range(steps + 2):  # two warm-up steps
        t0 = time.perf_counter()
        batch = next(it)
        if in_step is not None:
            batch = in_step(batch)
        path = PathSample(**batch)
        t1 = time.perf_counter()
        out = model(**path.model_inputs())
        t2 = time.perf_counter()
        loss = edit_flow_loss(out, path, scheduler).loss
        t3 = time.perf_counter()
        loss.backward()
        t4 = time.perf_counter()
        opt.step()
        opt.zero_grad(set_to_none=True)
        t5 = time.perf_counter()
        if step >= 2:
            for key, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                times[key] += dt
            tokens += int(path.attention_mask.sum())
    times["tokens"] = tokens
    return times


def quickstart_model(tok, x0: str, max_positions: int = 512):
    torch.manual_seed(0)
    return build_model_from_scratch(
        "modernbert",
        vocab_size=len(tok),
        anchor_token_id=1,
        hidden_size=128,
        num_layers=4,
        num_heads=4,
        intermediate_size=256,
        max_position_embeddings=max_positions,
        mask_token_id=tok.mask_token_id,
        pad_token_id=0,
        x0=x0,
    )


def ragged_step(model, opt, path: PathSample, scheduler, budget: int) -> float:
    """One optimizer step (padded when budget is 0); returns its seconds."""
    t0 = time.perf_counter()
    groups = [path] if budget == 0 else split_by_length(path, budget)
    totals = path_totals(path)
    for group in groups:
        out = model(**group.model_inputs())
        edit_flow_loss(out, group, scheduler, batch_totals=totals).loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return time.perf_counter() - t0


def ragged_benchmark(opts) -> None:
    import datasets

    datasets.disable_progress_bars()
    raw, _ = load_dataset_spec(f"{ROOT / 'data' / 'tiny-shakespeare.txt'}")
    tok = local_tokenizer(ROOT / "runs" / "bench-train" / "tokenizer", raw["text"][:3000], 8192)
    rows = 16
    print(
        f"\nragged vs padded batches: quickstart-shape ModernBERT, {rows} x1 rows per step, "
        f"{opts.steps} steps each, interleaved, {opts.threads} torch thread(s)\n"
    )
    head = (
        f"{'setting':34} {'budget':>7} {'fwd/step':>8} {'x_t pad':>8} "
        f"{'padded seq/s':>12} {'ragged seq/s':>12} {'ratio':>6}"
    )
    print(head)
    print("-" * len(head))
    for x0, spec, L in (("empty", "cubic", 512), ("masks[length:64]", "cubic", 128)):
        ds = pretraining_dataset(
            raw, tok, anchor_token_id=1, eos_token_id=2, text_field="text", max_length=L
        )
        scheduler = make_scheduler(spec)
        collator = EditFlowCollator(
            make_x0_sampler(x0), scheduler, pad_token_id=0,
            mask_token_id=tok.mask_token_id, vocab_size=len(tok),
        )  # fmt: skip
        torch.manual_seed(1)
        order = torch.randperm(len(ds)).tolist()
        paths = [
            PathSample(**collator([ds[i] for i in order[k * rows : (k + 1) * rows]]))
            for k in range(opts.steps + 1)
        ]
        for budget in (rows * L // 2, rows * L):
            models = {b: quickstart_model(tok, x0, max(512, L)) for b in (0, budget)}
            opts_ = {b: torch.optim.AdamW(m.parameters(), lr=1e-3) for b, m in models.items()}
            secs = dict.fromkeys(models, 0.0)
            for k, path in enumerate(paths):
                for b in models if k % 2 else reversed(list(models)):
                    dt = ragged_step(models[b], opts_[b], path, scheduler, b)
                    secs[b] += dt if k > 0 else 0.0  # step 0 warms up
            n = opts.steps * rows
            forwards = sum(len(split_by_length(p, budget)) for p in paths[1:]) / opts.steps
            padded_tokens = sum(p.x_t.numel() for p in paths[1:])
            ragged_tokens = sum(
                g.x_t.numel() for p in paths[1:] for g in split_by_length(p, budget)
            )
            print(
                f"{f'x0 = {x0}, {spec}, L = {L}':34} {budget:7d} {forwards:8.1f} "
                f"{ragged_tokens / padded_tokens:8.2f} {n / secs[0]:12.1f} "
                f"{n / secs[budget]:12.1f} {secs[0] / secs[budget]:5.2f}x"
            )
    print(
        "\nbudget: max_tokens_per_forward; x_t pad: padded x_t tokens of the ragged forwards / "
        "of the padded ones"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: shared CPU)")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument(
        "--ragged", action="store_true", help="ragged vs padded batches (see the docstring)"
    )
    opts = parser.parse_args()
    torch.set_num_threads(opts.threads)
    torch.manual_seed(0)
    if opts.ragged:
        ragged_benchmark(opts)
        return

    raw, _ = load_dataset_spec(f"{ROOT / 'data' / 'tiny-shakespeare.txt'}[train:3000]")
    tok = local_tokenizer(ROOT / "runs" / "bench-train" / "tokenizer", raw["text"], 8192)
    ds = pretraining_dataset(
        raw, tok, anchor_token_id=1, eos_token_id=2, text_field="text", max_length=64
    )
    spec = "masks[length:64]"
    scheduler = make_scheduler("cubic")
    collator = EditFlowCollator(
        make_x0_sampler(spec),
        scheduler,
        pad_token_id=0,
        mask_token_id=tok.mask_token_id,
        vocab_size=len(tok),
    )

    n = (opts.steps + 2) * opts.batch_size
    ours_loader = DataLoader(
        ds,
        batch_size=opts.batch_size,
        shuffle=True,
        collate_fn=collator,
        num_workers=1,
        persistent_workers=True,
    )
    ours = timed_steps(quickstart_model(tok, spec), ours_loader, opts.steps, scheduler)
    raw_loader = DataLoader(
        ds.select(range(min(n, len(ds)))), batch_size=opts.batch_size, shuffle=True, collate_fn=list
    )
    base = timed_steps(
        quickstart_model(tok, spec),
        raw_loader,
        opts.steps,
        scheduler,
        in_step=lambda examples: python_dp_path(examples, collator),
    )

    print(
        f"\nquickstart model, batch {opts.batch_size} x 64 tokens, {opts.steps} steps, "
        f"{opts.threads} torch thread(s)\n"
    )
    head = (
        f"{'pipeline':22} {'tokens/s':>9} {'step ms':>8} {'data':>6} {'fwd':>6} {'loss':>6} "
        f"{'bwd':>6} {'opt':>6} {'outside model':>14}"
    )
    print(head)
    print("-" * len(head))
    rates = {}
    for name, t in (("editflow-train", ours), ("python-dp in step", base)):
        total = sum(t[k] for k in ("data", "forward", "loss", "backward", "optimizer"))
        rates[name] = t["tokens"] / total
        ms = {
            k: 1000 * t[k] / opts.steps
            for k in ("data", "forward", "loss", "backward", "optimizer")
        }
        outside = (t["data"] + t["loss"]) / total
        print(
            f"{name:22} {rates[name]:9.0f} {1000 * total / opts.steps:8.1f} "
            + " ".join(f"{ms[k]:6.1f}" for k in ms)
            + f" {100 * outside:13.1f}%"
        )
    print(
        f"\nthroughput ratio editflow-train / python-dp in step: "
        f"{rates['editflow-train'] / rates['python-dp in step']:.2f}x"
    )


if __name__ == "__main__":
    main()
