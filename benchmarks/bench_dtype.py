"""Which precision is faster here: fp32 weights, bf16 autocast over fp32 weights, bf16 weights.

    uv run python benchmarks/bench_dtype.py [--steps 10] [--threads 1]

On the quickstart-shaped model (ModernBERT 4 x 128, BPE 8192), one run, steps interleaved:

- training: ms per optimizer step (batch 32 x 64 tokens, x0 = masks[length:64]) with fp32
  weights, fp32 weights under ``torch.autocast(bfloat16)`` (the trainer's ``--bf16 true``) and
  bf16 weights (``--dtype bf16``);
- sampling: 16 sequences x 32 steps through ``load_generation_setup(dtype=...)``, each dtype in
  a fresh process: seconds and peak resident memory (VmHWM), and its rise above the loaded
  model (the sampler's own memory).

Prints the CPU it ran on: speed claims carry their machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def cpu_name() -> str:
    """The CPU model and its bf16 support, from /proc/cpuinfo where there is one."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    name = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if "model name" in ln), "")
    flags = set(next((ln for ln in info.splitlines() if ln.startswith("flags")), "").split())
    feats = [f for f in ("avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{name} ({', '.join(feats) or 'no AVX-512'})"


def tokenizer():
    from editflow_train.sources import load_dataset_spec
    from editflow_train.tokenizer import local_tokenizer

    raw, _ = load_dataset_spec(f"{ROOT / 'data' / 'tiny-shakespeare.txt'}[train:3000]")
    return raw, local_tokenizer(ROOT / "runs" / "bench-train" / "tokenizer", raw["text"], 8192)


def model(tok, dtype: torch.dtype = torch.float32):
    """The quickstart-shape model of bench_train.py, x0 = masks[length:64], in ``dtype``."""
    from bench_train import quickstart_model

    return quickstart_model(tok, "masks[length:64]").to(dtype)


def training(opts) -> dict[str, float]:
    """ms per step for the three precisions, steps interleaved."""
    from editflow_core import PathSample, edit_flow_loss, make_scheduler, make_x0_sampler
    from editflow_train.chunking import pretraining_dataset
    from editflow_train.collator import EditFlowCollator

    raw, tok = tokenizer()
    ds = pretraining_dataset(
        raw, tok, anchor_token_id=1, eos_token_id=2, text_field="text", max_length=64
    )
    scheduler = make_scheduler("cubic")
    collate = EditFlowCollator(
        make_x0_sampler("masks[length:64]"), scheduler, pad_token_id=0,
        mask_token_id=tok.mask_token_id, vocab_size=len(tok),
    )  # fmt: skip
    torch.manual_seed(1)
    batches = [
        PathSample(**collate([ds[32 * k + i] for i in range(32)])) for k in range(opts.steps + 1)
    ]
    runs = {
        "fp32 weights": (model(tok), nullcontext),
        "bf16 autocast (--bf16)": (
            model(tok),
            lambda: torch.autocast("cpu", dtype=torch.bfloat16),
        ),
        "bf16 weights (--dtype bf16)": (model(tok, torch.bfloat16), nullcontext),
    }
    optims = {k: torch.optim.AdamW(m.parameters(), lr=1e-3) for k, (m, _) in runs.items()}
    secs = dict.fromkeys(runs, 0.0)
    for k, path in enumerate(batches):
        for name in runs if k % 2 else reversed(list(runs)):
            net, ctx = runs[name]
            t0 = time.perf_counter()
            with ctx():
                out = net(**path.model_inputs())
                loss = edit_flow_loss(out, path, scheduler).loss
            loss.backward()
            optims[name].step()
            optims[name].zero_grad(set_to_none=True)
            secs[name] += (time.perf_counter() - t0) if k > 0 else 0.0
    return {name: 1000 * s / opts.steps for name, s in secs.items()}


def peak_mb() -> float:
    """This process's peak resident memory (VmHWM; ``ru_maxrss`` would carry the parent's peak
    across exec on Linux)."""
    try:
        status = Path("/proc/self/status").read_text()
        return (
            int(next(ln for ln in status.splitlines() if ln.startswith("VmHWM")).split()[1]) / 1024
        )
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sample_child(folder: str, dtype: str, threads: int) -> None:
    """One sampling run in this process; prints JSON (seconds, peak MB above the load)."""
    from editflow_core import SamplingParams
    from editflow_models import load_generation_setup

    torch.set_num_threads(threads)
    setup = load_generation_setup(folder, dtype=dtype)
    sampler = setup.sampler()
    n = 16
    args = dict(
        x0=[setup.draw_x0(torch.Generator().manual_seed(i)) for i in range(n)],
        params=[SamplingParams(steps=32, seed=i, max_new_tokens=64) for i in range(n)],
    )
    loaded = peak_mb()
    sampler.generate([[setup.anchor_token_id]] * n, **args)  # warm-up
    t0 = time.perf_counter()
    sampler.generate([[setup.anchor_token_id]] * n, **args)
    seconds = time.perf_counter() - t0
    peak = peak_mb()
    print(json.dumps({"seconds": seconds, "peak_mb": peak, "above_load_mb": peak - loaded}))


def sampling(opts) -> dict[str, dict]:
    _, tok = tokenizer()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        model(tok).save_pretrained(tmp)  # fp32; each child loads it as fp32 or bf16
        tok.save_pretrained(tmp)
        for dtype in ("fp32", "bf16", "fp32", "bf16"):  # twice each, alternating
            res = subprocess.run(
                [sys.executable, __file__, "--sample-child", tmp, dtype, str(opts.threads)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            got = json.loads(res.stdout.strip().splitlines()[-1])
            best = out.get(dtype)
            if best is None or got["seconds"] < best["seconds"]:
                out[dtype] = got
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--sample-child":
        sample_child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    opts = parser.parse_args()
    torch.set_num_threads(opts.threads)
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    print(f"\n{cpu_name()}, torch {torch.__version__}, {opts.threads} thread(s)\n")
    train = training(opts)
    base = train["fp32 weights"]
    print(f"{'training (batch 32 x 64)':30} {'ms/step':>8} {'vs fp32':>8}")
    for name, ms in train.items():
        print(f"{name:30} {ms:8.0f} {base / ms:7.2f}x")
    samp = sampling(opts)
    print(f"\n{'sampling (16 x 32 steps)':30} {'s':>8} {'vs fp32':>8} {'peak MB':>8} {'+MB':>6}")
    for name, r in samp.items():
        print(
            f"{name + ' weights':30} {r['seconds']:8.2f} "
            f"{samp['fp32']['seconds'] / r['seconds']:7.2f}x"
            f" {r['peak_mb']:8.0f} {r['above_load_mb']:6.0f}"
        )


if __name__ == "__main__":
    main()
