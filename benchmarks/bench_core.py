"""editflow-core benchmarks: each figure is a ratio measured in one run on this machine.

    uv run python benchmarks/bench_core.py            # full table
    uv run python benchmarks/bench_core.py --quick    # smaller sizes, a few seconds

Everything runs on one torch thread, as DataLoader workers and the serving engine do.

1. ``align`` (rapidfuzz) against a pure-Python Needleman-Wunsch, random 32k-vocab sequences.
2. Building a training batch (x0 sampling + alignment + path + edit targets), 16 x 512 tokens.
3. Peak memory of the loss path (heads + loss, forward + backward) at B=16, L=512, V=32k:
   token logits at edit rows only against full log-softmax for both heads. Each variant runs in
   a fresh subprocess; peak = ru_maxrss (high-water RSS) minus RSS before the path.
4. The sampler: 16 sequences in one batch against 16 sequential runs, same tiny model and steps;
   then the same with a lookup-table model that costs almost nothing, which isolates the
   sampler's own per-step work from the network's; and the tiny model's forward alone at batch
   1 and 16, the ceiling where the forward dominates.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from editflow_core import (
    BatchSampler,
    EditFlowOutput,
    RatesFirst,
    SamplingParams,
    align,
    align_batch,
    edit_flow_loss,
    make_scheduler,
    make_x0_sampler,
    sample_path,
)
from editflow_testing.reference import needleman_wunsch

VOCAB = 32_000


def best_of(fn, repeat: int) -> float:
    """Fastest of ``repeat`` timed calls, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def bench_align(sizes: list[int]) -> list[tuple]:
    rows = []
    rng = random.Random(0)
    for n in sizes:
        a = [rng.randrange(VOCAB) for _ in range(n)]
        # x1: a with ~30% of positions edited, so the alignment is non-trivial
        b = [x if rng.random() > 0.3 else rng.randrange(VOCAB) for x in a]
        b = [x for x in b if rng.random() > 0.1] + [rng.randrange(VOCAB) for _ in range(n // 10)]
        fast = slow = float("inf")
        for _ in range(2 if n >= 512 else 4):  # interleaved: robust to load changing mid-run
            fast = min(fast, best_of(lambda: align(a, b), 20))
            slow = min(slow, best_of(lambda: needleman_wunsch(a, b), 1))
        rows.append(
            (
                f"align {n}x{n}",
                f"{fast * 1e6:.0f} us",
                f"{slow * 1e3:.0f} ms (Python DP)",
                f"{slow / fast:,.0f}x",
            )
        )
    return rows


def bench_batch(batch: int, length: int) -> list[tuple]:
    g = torch.Generator().manual_seed(0)
    sched = make_scheduler("cubic")
    x1s = [[1, *torch.randint(5, VOCAB, (length - 1,), generator=g).tolist()] for _ in range(batch)]
    rows = []
    for spec, coupling in (
        ("masks[length:64]", "noise"),
        ("empty", "noise"),
        ("uniform[length:512]", "optimal"),
    ):
        x0 = make_x0_sampler(spec)

        def build() -> None:
            x0s = [
                [1, *x0.sample(g, mask_token_id=4, vocab_size=VOCAB).tolist()] for _ in range(batch)
            ]
            sample_path(align_batch(x0s, x1s, coupling=coupling, generator=g), sched, generator=g)

        sec = best_of(build, 20)
        rows.append(
            (
                f"batch {batch}x{length}, x0 {spec}, {coupling}",
                f"{sec * 1e3:.2f} ms",
                "target < 10 ms",
                "ok" if sec < 0.01 else "SLOW",
            )
        )
    return rows


def _loss_memory_child(mode: str, batch: int, length: int, vocab: int, hidden: int) -> dict:
    """Runs in a subprocess: peak extra RSS of one forward + backward of the loss path."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x1s = [[1, *torch.randint(5, vocab, (length - 1,), generator=g).tolist()] for _ in range(batch)]
    x0s = [[1, *([4] * 64)] for _ in range(batch)]
    sched = make_scheduler("cubic")
    path = sample_path(align_batch(x0s, x1s, coupling="noise", generator=g), sched, generator=g)
    B, L = path.x_t.shape
    h = torch.randn(B, L, hidden, requires_grad=True)
    w_ins, w_sub = (torch.randn(vocab, hidden) * 0.02 for _ in range(2))
    w_ins.requires_grad_(), w_sub.requires_grad_()
    rate = torch.nn.Linear(hidden, 3)
    before = int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize()
    rates = torch.nn.functional.softplus(rate(h))
    if mode == "rows":
        flat = h.flatten(0, 1)
        out = EditFlowOutput(rates, flat[path.ins_rows] @ w_ins.T, flat[path.sub_rows] @ w_sub.T)
        loss = edit_flow_loss(out, path, sched).loss
    else:  # full (B, L, V) log-softmax for both heads, then gather
        lp_ins = torch.log_softmax(h @ w_ins.T, -1)
        lp_sub = torch.log_softmax(h @ w_sub.T, -1)
        out = EditFlowOutput(
            rates, lp_ins.flatten(0, 1)[path.ins_rows], lp_sub.flatten(0, 1)[path.sub_rows]
        )
        loss = edit_flow_loss(out, path, sched).loss
    loss.backward()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "peak_mb": (peak - before) / 2**20,
        "rows": len(path.ins_rows) + len(path.sub_rows),
        "cells": B * L,
    }


def bench_loss_memory(batch: int, length: int, vocab: int, hidden: int) -> list[tuple]:
    res = {}
    for mode in ("rows", "full"):
        cmd = [
            sys.executable,
            __file__,
            "--loss-child",
            mode,
            str(batch),
            str(length),
            str(vocab),
            str(hidden),
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        res[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    ratio = res["rows"]["peak_mb"] / res["full"]["peak_mb"]
    return [
        (
            f"loss path B={batch} L={length} V={vocab}",
            f"{res['rows']['peak_mb']:.0f} MB (logits at {res['rows']['rows']} rows)",
            f"{res['full']['peak_mb']:.0f} MB (full log-softmax, {res['full']['cells']} rows x 2)",
            f"{ratio:.2f} of full (target <= 0.33)",
        )
    ]


class Block(torch.nn.Module):
    """Pre-norm bidirectional attention + MLP."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = torch.nn.LayerNorm(dim), torch.nn.LayerNorm(dim)
        self.qkv, self.out = torch.nn.Linear(dim, 3 * dim), torch.nn.Linear(dim, dim)
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(dim, 4 * dim), torch.nn.GELU(), torch.nn.Linear(4 * dim, dim)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, L, D = x.shape
        q, k, v = (
            self.qkv(self.norm1(x))
            .view(B, L, 3, self.heads, D // self.heads)
            .permute(2, 0, 3, 1, 4)
        )
        a = torch.nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=mask[:, None, None, :]
        )
        x = x + self.out(a.transpose(1, 2).reshape(B, L, D))
        return x + self.mlp(self.norm2(x))


class TinyModel(torch.nn.Module):
    """A tiny bidirectional transformer with Edit Flow heads (not time conditioned)."""

    time_conditioned = False

    def __init__(
        self, vocab: int = 512, dim: int = 32, layers: int = 2, max_len: int = 512
    ) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, dim)
        self.pos = torch.nn.Embedding(max_len, dim)
        self.blocks = torch.nn.ModuleList(Block(dim, 4) for _ in range(layers))
        self.rate = torch.nn.Linear(dim, 3)
        self.ins = torch.nn.Linear(dim, vocab)
        self.sub = torch.nn.Linear(dim, vocab)

    def hidden(self, input_ids, attention_mask) -> torch.Tensor:
        h = self.emb(input_ids) + self.pos(torch.arange(input_ids.shape[1]))[None]
        for block in self.blocks:
            h = block(h, attention_mask.bool())
        return h  # (B, L, D)

    def forward(self, input_ids, attention_mask, t, ins_rows=None, sub_rows=None) -> EditFlowOutput:
        h = self.hidden(input_ids, attention_mask)
        rates = torch.nn.functional.softplus(self.rate(h) - 2.0)
        return EditFlowOutput(rates, self.ins(h), self.sub(h))

    def forward_rates(self, input_ids, attention_mask, t) -> RatesFirst:
        h = self.hidden(input_ids, attention_mask)
        flat = h.flatten(0, 1)  # (B * L, D)
        return RatesFirst(
            torch.nn.functional.softplus(self.rate(h) - 2.0),
            lambda ins_rows, sub_rows: (self.ins(flat[ins_rows]), self.sub(flat[sub_rows])),
        )


class LookupModel:
    """Rates and token logits looked up by token id from fixed random tables: (almost) no cost,
    so a run times the sampler's own work. Rates ~ U(0, 0.3), like the tiny model's."""

    time_conditioned = False

    def __init__(self, vocab: int = 512) -> None:
        g = torch.Generator().manual_seed(0)
        self.rates = torch.rand(vocab, 3, generator=g) * 0.3
        self.ins = torch.randn(vocab, vocab, generator=g)
        self.sub = torch.randn(vocab, vocab, generator=g)

    def forward_rates(self, input_ids, attention_mask, t) -> RatesFirst:
        flat = input_ids.flatten()
        return RatesFirst(
            self.rates[input_ids],
            lambda ins_rows, sub_rows: (self.ins[flat[ins_rows]], self.sub[flat[sub_rows]]),
        )


def bench_sampler(
    n: int, steps: int, prompt_len: int, x0_len: int, model=None, what: str = "tiny model"
) -> list[tuple]:
    torch.manual_seed(0)
    model = model if model is not None else TinyModel().eval()
    sched = make_scheduler("cubic")
    prompts = [[1, *torch.randint(5, 512, (prompt_len,)).tolist()] for _ in range(n)]
    x0 = [[4] * x0_len] * n
    params = [SamplingParams(steps=steps, seed=i, max_new_tokens=128) for i in range(n)]

    def batched() -> None:
        BatchSampler(model, sched).generate(prompts, x0, params)

    def sequential() -> None:
        for i in range(n):
            BatchSampler(model, sched).generate([prompts[i]], [x0[i]], [params[i]])

    b = s = float("inf")
    for _ in range(3):  # interleaved, best of 3 each: robust to load that changes mid-run
        b, s = min(b, best_of(batched, 1)), min(s, best_of(sequential, 1))
    return [
        (
            f"sampler {n} seqs x {steps} steps, {what}",
            f"{b * 1e3:.0f} ms batched",
            f"{s * 1e3:.0f} ms sequential",
            f"{s / b:.1f}x" + (" (target >= 6x)" if isinstance(model, TinyModel) else ""),
        )
    ]


def bench_forward(n: int, length: int) -> list[tuple]:
    """The tiny model's forward alone: one batch of n rows against n single-row forwards."""
    torch.manual_seed(0)
    model = TinyModel().eval()
    times = {}
    for b in (1, n):
        ids = torch.randint(5, 512, (b, length))
        mask, t = torch.ones_like(ids, dtype=torch.bool), torch.zeros(b)
        with torch.no_grad():
            times[b] = best_of(lambda: model.forward_rates(ids, mask, t), 50)
    return [
        (
            f"tiny model forward alone, {n} x {length} tokens",
            f"{times[n] * 1e3:.2f} ms for {n} rows",
            f"{times[1] * 1e3:.2f} ms for 1 row",
            f"{n * times[1] / times[n]:.1f}x (ceiling where the forward dominates)",
        )
    ]


def main() -> None:
    torch.set_num_threads(1)  # as in DataLoader workers and the server's engine thread
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="smaller sizes (seconds, for a smoke run)")
    ap.add_argument("--loss-child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.loss_child:
        mode, *nums = args.loss_child
        print(json.dumps(_loss_memory_child(mode, *map(int, nums))))
        return
    rows = []
    if args.quick:
        rows += bench_align([128, 256])
        rows += bench_batch(4, 128)
        rows += bench_loss_memory(4, 128, 8000, 64)
        rows += bench_sampler(4, 8, 8, 8)
        rows += bench_sampler(4, 8, 8, 8, LookupModel(), "lookup model (sampler alone)")
        rows += bench_forward(4, 16)
    else:
        rows += bench_align([128, 512, 1024])
        rows += bench_batch(16, 512)
        rows += bench_loss_memory(16, 512, 32_000, 256)
        rows += bench_sampler(16, 32, 16, 32, what="tiny model (dim 32, 2 layers)")
        rows += bench_sampler(16, 32, 16, 32, LookupModel(), "lookup model (sampler alone)")
        rows += bench_forward(16, 57)  # 17 prompt + 32 x0 tokens, grown by the run
    widths = [max(len(str(r[i])) for r in rows) for i in range(4)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for r in rows:
        print(" | ".join(str(c).ljust(w) for c, w in zip(r, widths)))


if __name__ == "__main__":
    main()
