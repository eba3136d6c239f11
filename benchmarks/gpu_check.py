"""The GPU check: what editflow does on one GPU, as a markdown table and JSON, in one run.

    bash scripts/gpu_check.sh [--out runs/gpu_check] [--peak-tflops N]
    bash scripts/gpu_check.sh --smoke        # the same code on the CPU, tiny sizes, < 2 min

Sections (each timed with warm-up steps excluded; a section that fails is reported, not fatal):

1. **train**: tokens/s and model FLOPs utilisation of a training step (forward + loss + backward
   + AdamW) for a ModernBERT (~0.15B) and a Qwen3-style decoder made bidirectional (~0.2B),
   built from config, bf16 autocast, x0 = empty, kappa = t^3, L = 512, for every attention kernel
   available (sdpa, FlexAttention, flash-attention 2 when installed), padded and ragged
   (``max_tokens_per_forward``). tokens/s counts real x_t tokens; MFU = 6 x params x tokens/s /
   peak (the GPU's dense bf16 peak, from its name or ``--peak-tflops``).
2. **zero2**: ``accelerate launch`` of ``editflow-train pt`` under DeepSpeed ZeRO-2 on one
   process (configs/accelerate/zero2.yaml): steps/s from its summary.
3. **sampler**: forward passes per second of ``BatchSampler`` at batch 1, 16 and 64.
4. **server**: ``editflow-serve`` on the GPU, requests per second at 1, 16 and 64 concurrent
   chat completions (the openai SDK), and failures.

``--smoke`` runs every section on the CPU with tiny models and a few steps (fp32, sdpa only),
so the script is tested in the plain suite (tests/benchmarks/test_gpu_check.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

#: dense bf16 peak TFLOP/s by GPU name fragment (vendor data sheets, no sparsity)
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}


@dataclass
class Size:
    """One run's sizes: the real check or the smoke test."""

    device: str
    hidden: int
    layers: int
    heads: int
    vocab: int
    length: int
    rows: int
    steps: int
    sampler_steps: int
    server_steps: int


REAL = Size("cuda", 768, 12, 12, 50368, 512, 16, 10, 16, 32)
SMOKE = Size("cpu", 64, 2, 2, 512, 64, 4, 2, 2, 4)


def peak_flops(device: str, override: float | None) -> float | None:
    if override:
        return override * 1e12
    if device != "cuda":
        return None
    name = torch.cuda.get_device_name()
    return next((v * 1e12 for k, v in PEAK_TFLOPS.items() if k in name), None)


def build(arch: str, size: Size, vocab: int | None = None):
    from editflow_models import build_model_from_scratch

    torch.manual_seed(0)
    extra = {"intermediate_size": 4 * size.hidden}
    return build_model_from_scratch(
        arch, vocab_size=vocab or size.vocab, anchor_token_id=1, hidden_size=size.hidden,
        num_layers=size.layers, num_heads=size.heads, max_position_embeddings=2048,
        mask_token_id=3, pad_token_id=0, x0="empty", **extra,
    )  # fmt: skip


def attention_kernels(size: Size) -> list[str]:
    kernels = ["sdpa"]
    if size.device == "cuda":
        kernels.append("flex_attention")
        try:
            import flash_attn  # noqa: F401

            kernels.append("flash_attention_2")
        except ImportError:
            pass
    return kernels


def train_rows(size: Size, peak: float | None) -> list[dict]:
    """Section 1: one row per (model, kernel, padded / ragged)."""
    from editflow_core import (
        PathSample,
        align_batch,
        edit_flow_loss,
        make_scheduler,
        path_totals,
        sample_path,
        split_by_length,
    )  # fmt: skip

    scheduler = make_scheduler("cubic")
    g = torch.Generator().manual_seed(0)
    paths = []
    for _ in range(size.steps + 2):
        x1s = [[1, *torch.randint(5, size.vocab, (size.length - 1,), generator=g).tolist()]]
        x1s *= size.rows
        batch = align_batch([[1]] * size.rows, x1s, [1] * size.rows, coupling="noise")
        paths.append(sample_path(batch, scheduler, generator=g))
    rows = []
    for arch, label in (("modernbert", "ModernBERT"), ("qwen3", "Qwen3-style (a2d)")):
        for kernel in attention_kernels(size):
            # FlexAttention compiles a kernel per new shape: ragged groups would recompile
            # every step, so it runs padded only
            for ragged in (False,) if kernel == "flex_attention" else (False, True):
                model = build(arch, size).to(size.device).train()
                model.set_attn_implementation(kernel)
                params = sum(p.numel() for p in model.parameters())
                opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
                budget = size.rows * size.length // 2 if ragged else 0
                tokens, seconds = 0, 0.0
                for k, path in enumerate(paths):
                    sync(size.device)
                    t0 = time.perf_counter()
                    groups = split_by_length(path, budget) if budget else [path]
                    totals = path_totals(path)
                    for group in groups:
                        group = PathSample(**{n: v.to(size.device) for n, v in vars(group).items()})
                        with torch.autocast(
                            size.device, torch.bfloat16, enabled=size.device == "cuda"
                        ):
                            out = model(**group.model_inputs())
                            loss = edit_flow_loss(out, group, scheduler, batch_totals=totals).loss
                        loss.backward()
                    opt.step()
                    opt.zero_grad(set_to_none=True)
                    sync(size.device)
                    if k >= 2:  # two warm-up steps (compilation, allocator)
                        seconds += time.perf_counter() - t0
                        tokens += int(path.attention_mask.sum())
                rate = tokens / seconds
                rows.append({
                    "model": label, "params_m": round(params / 1e6, 1), "attention": kernel,
                    "batches": "ragged" if ragged else "padded", "tokens_per_s": round(rate),
                    "x1_per_s": round(size.steps * size.rows / seconds, 1),
                    "mfu": round(6 * params * rate / peak, 3) if peak else "n/a",
                })  # fmt: skip
                del model, opt
    return rows


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def zero2_rows(size: Size, tmp: Path) -> list[dict]:
    """Section 2: ZeRO-2 on one process through accelerate launch."""
    cfg = tmp / "zero2.yaml"
    cfg.write_text(
        "\n".join([
            f"dataset: {ROOT / 'data' / 'tiny-shakespeare.txt'}[train:2000,test:20]",
            f"max_length: {size.length}", "tokenizer_vocab_size: 2048", "arch: modernbert",
            f"hidden_size: {size.hidden}", f"num_layers: {size.layers}",
            f"num_heads: {size.heads}", f"output_dir: {tmp / 'zero2-run'}",
            f"max_steps: {4 * size.steps}", f"per_device_train_batch_size: {size.rows}",
            "num_samples: 0", "nll_bound_samples: 0", "save_strategy: 'no'", "logging_steps: 1",
            "disable_tqdm: true", "use_cpu: false", f"bf16: {str(size.device == 'cuda').lower()}",
        ])
    )  # fmt: skip
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    extra = []
    if size.device != "cuda":  # DeepSpeed on a CPU: no GPU visible, gloo (as tests/train do)
        env |= {"CUDA_VISIBLE_DEVICES": ""}
        env.pop("ACCELERATE_USE_CPU", None)
        extra = ["--ddp_backend", "gloo"]
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file",
        str(ROOT / "configs" / "accelerate" / "zero2.yaml"), "--num_processes", "1",
        "--num_machines", "1", "--mixed_precision", "bf16" if size.device == "cuda" else "no",
        "-m", "editflow_train.cli", "pt", "--config", str(cfg), *extra,
    ]  # fmt: skip
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-2000:])
    summary = json.loads((tmp / "zero2-run" / "summary.json").read_text())
    return [{
        "distributed_type": summary.get("distributed_type"),
        "zero_stage": summary.get("zero_stage"),
        "steps": summary["global_step"],
        "steps_per_s": round(summary["global_step"] / float(summary["train_runtime"]), 2),
    }]  # fmt: skip


def saved_model(size: Size, tmp: Path) -> Path:
    """A random ModernBERT of the check's size with a BPE tokenizer, saved for sampling."""
    from editflow_train.sources import load_dataset_spec
    from editflow_train.tokenizer import local_tokenizer

    raw, _ = load_dataset_spec(f"{ROOT / 'data' / 'tiny-shakespeare.txt'}[train:2000]")
    tok = local_tokenizer(tmp / "tokenizer", raw["text"], 2048)
    model = build("modernbert", size, vocab=len(tok))
    model.config.x0 = "masks[length:32]"
    folder = tmp / "model"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def sampler_rows(size: Size, folder: Path) -> list[dict]:
    """Section 3: forward passes per second at batch 1, 16, 64."""
    from editflow_core import SamplingParams
    from editflow_models import load_generation_setup

    dtype = "bf16" if size.device == "cuda" else "fp32"
    setup = load_generation_setup(folder, device=size.device, dtype=dtype)
    rows = []
    for batch in (1, 16, 64):
        sampler = setup.sampler()
        x0 = [setup.draw_x0(torch.Generator().manual_seed(i)) for i in range(batch)]
        params = [
            SamplingParams(steps=size.sampler_steps, seed=i, max_new_tokens=64)
            for i in range(batch)
        ]
        sampler.generate([[setup.anchor_token_id]] * batch, x0=x0, params=params)  # warm-up
        sync(size.device)
        before, t0 = sampler.forward_passes, time.perf_counter()
        sampler.generate([[setup.anchor_token_id]] * batch, x0=x0, params=params)
        sync(size.device)
        seconds = time.perf_counter() - t0
        passes = sampler.forward_passes - before
        rows.append({
            "batch": batch, "forwards_per_s": round(passes / seconds, 1),
            "sequence_steps_per_s": round(passes * batch / seconds, 1),
        })  # fmt: skip
    return rows


def server_rows(size: Size, folder: Path) -> list[dict]:
    """Section 4: editflow-serve at 1, 16 and 64 concurrent chat completions."""
    from bench_serve import run_level, start_server
    from openai import AsyncOpenAI

    args = argparse.Namespace(
        device=size.device, torch_threads=None, max_tokens=32, steps=size.server_steps,
        max_running=64,
    )  # fmt: skip
    proc, url = start_server(args, folder)
    try:

        async def levels() -> list[dict]:
            client = AsyncOpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=600)
            model = (await client.models.list()).data[0].id
            await run_level(client, model, 2, 2, args)  # warm-up
            out = []
            for conc in (1, 16, 64):
                r = await run_level(client, model, conc, max(2 * conc, 4), args)
                out.append({k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()})
            return out

        return asyncio.run(levels())
    finally:
        proc.terminate()
        proc.wait(60)


def markdown(report: dict) -> str:
    """The report as markdown tables, one per section."""
    lines = [f"# editflow GPU check ({report['device']})", ""]
    for name, rows in report["sections"].items():
        lines.append(f"## {name}")
        if isinstance(rows, dict) and "error" in rows:
            lines += ["", f"failed: {rows['error'].strip().splitlines()[-1]}", ""]
            continue
        keys = list(rows[0]) if rows else []
        lines += ["", "| " + " | ".join(keys) + " |", "|" + " --- |" * len(keys)]
        lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
        lines.append("")
    lines.append(f"total {report['seconds']:.0f} s")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="CPU, tiny sizes: checks the script")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "gpu_check")
    p.add_argument("--peak-tflops", type=float, default=None, help="the GPU's dense bf16 peak")
    p.add_argument(
        "--only", nargs="*", choices=("train", "zero2", "sampler", "server"), default=None
    )
    args = p.parse_args(argv)
    size = SMOKE if args.smoke else REAL
    if size.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: run with --smoke to check the script on the CPU", file=sys.stderr)
        return 2
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    start = time.perf_counter()
    device = torch.cuda.get_device_name() if size.device == "cuda" else "CPU (smoke)"
    report: dict = {"device": device, "torch": torch.__version__, "sections": {}}
    peak = peak_flops(size.device, args.peak_tflops)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        folder = None
        for name in args.only or ("train", "zero2", "sampler", "server"):
            print(f"gpu_check: {name} ...", file=sys.stderr, flush=True)
            try:
                if name == "train":
                    rows = train_rows(size, peak)
                elif name == "zero2":
                    rows = zero2_rows(size, tmp)
                else:
                    folder = folder or saved_model(size, tmp)
                    rows = (
                        sampler_rows(size, folder)
                        if name == "sampler"
                        else server_rows(size, folder)
                    )
                report["sections"][name] = rows
            except Exception:  # noqa: BLE001 (a failed section is a finding, not a crash)
                report["sections"][name] = {"error": traceback.format_exc()}
    report["seconds"] = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    (args.out / "report.md").write_text(text)
    print(text)
    failed = [n for n, r in report["sections"].items() if isinstance(r, dict)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
