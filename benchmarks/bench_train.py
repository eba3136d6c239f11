"""Training throughput of the quickstart model, and where a step's time goes.

    uv run python benchmarks/bench_train.py [--steps 30] [--threads 1]

Two pipelines on the same model, data and batch size (the quickstart's: ModernBERT 4 x 128,
BPE 8192, x1 = 64 tokens, x0 = masks[length:64], batch 32):

- ``editflow-train``: ``EditFlowCollator`` (x0 + closed-form alignment + path) runs in one
  DataLoader worker, off the training process's critical path.
- ``python-dp in step``: the same path, but each (x0, x1) pair is aligned by a pure-Python
  Levenshtein DP inside the training step (what an implementation without a collator does).

Per step it times: waiting for the batch (data), the model forward, the loss, the backward and
the optimizer step. "outside model" = (data + loss) / step: the share the issue bounds by 10%.
"""

from __future__ import annotations

import argparse
import sys
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
    sample_path,
)
from editflow_models import build_model_from_scratch
from editflow_train.chunking import pretraining_dataset
from editflow_train.collator import PATH_FIELDS, EditFlowCollator
from editflow_train.sources import load_dataset_spec
from editflow_train.tokenizer import local_tokenizer
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.core.reference import needleman_wunsch  # noqa: E402  (the pure-Python DP baseline)

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: shared CPU)")
    parser.add_argument("--batch_size", type=int, default=32)
    opts = parser.parse_args()
    torch.set_num_threads(opts.threads)
    torch.manual_seed(0)

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

    def model():
        torch.manual_seed(0)
        return build_model_from_scratch(
            "modernbert",
            vocab_size=len(tok),
            anchor_token_id=1,
            hidden_size=128,
            num_layers=4,
            num_heads=4,
            intermediate_size=256,
            max_position_embeddings=512,
            mask_token_id=tok.mask_token_id,
            pad_token_id=0,
            x0=spec,
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
    ours = timed_steps(model(), ours_loader, opts.steps, scheduler)
    raw_loader = DataLoader(
        ds.select(range(min(n, len(ds)))), batch_size=opts.batch_size, shuffle=True, collate_fn=list
    )
    base = timed_steps(
        model(),
        raw_loader,
        opts.steps,
        scheduler,
        in_step=lambda examples: python_dp_path(examples, collator),
    )

    print(
        f"\nquickstart model, batch {opts.batch_size} x 64 tokens, {opts.steps} steps, "
        f"{opts.threads} torch thread(s)\n"
    )
    head = f"{'pipeline':22} {'tokens/s':>9} {'step ms':>8} {'data':>6} {'fwd':>6} {'loss':>6} {'bwd':>6} {'opt':>6} {'outside model':>14}"
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
