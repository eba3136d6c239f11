"""Benchmark editflow-serve with concurrent OpenAI-client requests.

    uv run python benchmarks/bench_serve.py [--steps 32] [--max-tokens 32] [--url URL]
    uv run --package editflow-serve --extra ray python benchmarks/bench_serve.py --replicas 2

Starts a server (``--model``; default the quickstart checkpoint
``runs/quickstart/checkpoint-final`` when it exists, else a tiny random model made on the spot;
``--model tiny`` forces it; it says which) unless ``--url`` points at a running one, then
drives POST /v1/chat/completions at concurrency 1, 4 and 16 and prints requests/s and
p50/p99 latency. Target: at 16 concurrent, throughput >= 6x that at 1, and no request fails
(exit status 1 otherwise).

It then times the model's forward alone at batch 1 and 16 on the requests' shapes (in this
process, same device and threads): ``16 * T(1) / T(16)`` is what batching gains on the forward
itself, the ceiling for any batching server where the forward dominates; it tells a slow
server from a compute-bound machine.

``--ragged``: the engine's running batch with and without ragged forwards
(``--max-tokens-per-forward``): 32 sequences with prompts of 1-200 tokens, x0 = empty, through
``BatchSampler`` directly on a quickstart-shape model (random, rates biased to insert), runs
alternated; prints seconds and the ratio, and checks that both give the same tokens.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from openai import AsyncOpenAI

QUICKSTART = Path("runs/quickstart/checkpoint-final")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pick_model(args: argparse.Namespace) -> tuple[Path, str]:
    if args.model not in (None, "tiny"):
        return Path(args.model), f"checkpoint {args.model}"
    if QUICKSTART.is_dir() and args.model is None:
        return QUICKSTART, f"quickstart checkpoint {QUICKSTART}"
    try:
        from editflow_testing import save_tiny_model
    except ImportError:
        sys.exit(
            "the tiny random model comes from editflow-testing, the workspace's dev-only "
            "package: run `uv sync` in the repository (it installs the dev group) or give --model"
        )
    model = save_tiny_model(Path(tempfile.mkdtemp()) / "tiny-random")
    return model, "a tiny random model (hidden 32, 2 layers)"


def forward_bound(model_dir: Path, args: argparse.Namespace) -> tuple[float, float, float]:
    """(T(1) ms, T(16) ms, 16 T(1) / T(16)): the model's forward alone on a request's shape."""
    import torch
    from editflow_models import load_generation_setup

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    setup = load_generation_setup(model_dir, device=args.device)
    prefix = setup.chat_prefix([{"role": "user", "content": "Tell me about edit number 7."}])
    x0 = setup.draw_x0(torch.Generator().manual_seed(0))[: args.max_tokens]
    times = {}
    for b in (1, 16):
        ids = torch.tensor([prefix + x0] * b, device=args.device)
        mask, t = torch.ones_like(ids), torch.full((b,), 0.5, device=args.device)
        with torch.no_grad():
            best = float("inf")
            for _ in range(20):
                t0 = time.perf_counter()
                out = setup.model.forward_rates(ids, mask, t)
                out.rates.sum().item()  # waits for the device
                best = min(best, time.perf_counter() - t0)
        times[b] = best
    return times[1] * 1e3, times[16] * 1e3, 16 * times[1] / times[16]


def start_server(args: argparse.Namespace, model: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "editflow_serve.cli",
        "--model",
        str(model),
        "--port",
        str(port),
        "--max-running",
        str(getattr(args, "max_running", 32)),
        "--max-queued",
        "256",
        "--log-level",
        "warning",
        "--device",
        args.device,
    ]
    if args.torch_threads:
        cmd += ["--torch-threads", str(args.torch_threads)]
    if getattr(args, "replicas", 0):
        cmd += ["--replicas", str(args.replicas)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        if proc.poll() is not None:
            sys.exit("the server exited during startup")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            sys.exit("the server did not become healthy in 300 s")
        time.sleep(0.3)


async def run_level(client: AsyncOpenAI, model: str, conc: int, total: int, args) -> dict:
    latencies: list[float] = []
    failures = 0
    sem = asyncio.Semaphore(conc)

    async def one(i: int) -> None:
        nonlocal failures
        async with sem:
            t0 = time.perf_counter()
            try:
                await client.chat.completions.create(
                    model=model,
                    messages=[{"role": "user", "content": f"Tell me about edit number {i}."}],
                    max_tokens=args.max_tokens,
                    seed=i,
                    extra_body={"steps": args.steps},
                )
                latencies.append(time.perf_counter() - t0)
            except Exception as err:  # noqa: BLE001 (every failure counts)
                failures += 1
                print(f"  request {i} failed: {err!r}", file=sys.stderr)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(total)))
    wall = time.perf_counter() - t0
    lat = sorted(latencies) or [float("nan")]
    return {
        "conc": conc,
        "requests": total,
        "failures": failures,
        "rps": len(latencies) / wall,
        "p50": statistics.median(lat),
        "p99": lat[min(len(lat) - 1, int(round(0.99 * (len(lat) - 1))))],
    }


async def bench(url: str, args) -> list[dict]:
    client = AsyncOpenAI(
        base_url=url + "/v1",
        api_key=os.environ.get("EDITFLOW_API_KEY", "none"),
        max_retries=0,
        timeout=600,
    )
    model = (await client.models.list()).data[0].id
    await run_level(client, model, 4, 8, args)  # warm-up
    rows = []
    for conc in (1, 4, 16):
        rows.append(await run_level(client, model, conc, max(args.requests, 2 * conc), args))
    await client.close()
    return rows


def ragged_benchmark(device: str, reps: int = 3) -> None:
    """Seconds to finish 32 mixed-length sequences, padded vs ragged forwards (see the top)."""
    import torch
    from editflow_core import BatchSampler, SamplingParams, make_scheduler
    from editflow_models import build_model_from_scratch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_model_from_scratch(
        "modernbert", vocab_size=8192, anchor_token_id=1, hidden_size=128, num_layers=4,
        num_heads=4, intermediate_size=256, max_position_embeddings=1024, mask_token_id=3,
        pad_token_id=0, x0="empty", time_conditioning=False,
    ).eval().to(device)  # fmt: skip
    with torch.no_grad():  # insert about 1.5 tokens per gap over the run, rarely delete
        model.rate_head.bias.copy_(torch.tensor([1.5, -3.0, -3.0]))
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 200, (32,), generator=g).tolist()
    prefixes = [[1] + torch.randint(5, 8000, (n,), generator=g).tolist() for n in lengths]
    params = [SamplingParams(steps=16, seed=i, max_new_tokens=128) for i in range(32)]
    budgets = (0, 2048, 4096, 8192)
    best, tokens = dict.fromkeys(budgets, float("inf")), {}
    for _ in range(reps):
        for budget in budgets:
            sampler = BatchSampler(
                model, make_scheduler("cubic"), max_tokens_per_forward=budget, device=device
            )
            t0 = time.perf_counter()
            res = sampler.generate(prefixes, params=params)
            best[budget] = min(best[budget], time.perf_counter() - t0)
            tokens[budget] = [r.tokens for r in res]
    print(f"\nrunning batch: 32 sequences, prompts 1-200 tokens, 16 steps, {device}, 1 thread")
    print(f"{'max_tokens_per_forward':>24} {'seconds':>8} {'vs padded':>9} {'same tokens':>12}")
    for budget in budgets:
        print(
            f"{budget or 'off (padded)':>24} {best[budget]:8.2f} {best[0] / best[budget]:8.2f}x "
            f"{str(tokens[budget] == tokens[0]):>12}"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="a running server (default: start one)")
    p.add_argument(
        "--model", help="checkpoint to serve, or 'tiny' (default: quickstart if present)"
    )
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--requests", type=int, default=32, help="requests per concurrency level")
    p.add_argument(
        "--torch-threads", type=int, help="engine threads (default: the server's, torch's default)"
    )
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--replicas", type=int, default=0, help="serve N Ray Serve replicas (needs the ray extra)"
    )
    p.add_argument("--ragged", action="store_true", help="padded vs ragged running batch only")
    args = p.parse_args()
    if args.ragged:
        ragged_benchmark(args.device)
        return
    proc = model = None
    if args.url:
        url, what = args.url, f"the server at {args.url}"
    else:
        model, what = pick_model(args)
        proc, url = start_server(args, model)
    try:
        threads = args.torch_threads or f"torch's default ({os.cpu_count()} cores)"
        print(
            f"model: {what}; {args.steps} steps, max_tokens {args.max_tokens}, chat completions, "
            f"engine threads: {threads}"
            + (f", {args.replicas} Ray Serve replicas" if args.replicas else "")
        )
        rows = asyncio.run(bench(url, args))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(60)
    print(
        f"{'concurrency':>11} {'requests':>8} {'failed':>6} {'req/s':>8} {'p50 s':>8} {'p99 s':>8}"
    )
    for r in rows:
        print(
            f"{r['conc']:>11} {r['requests']:>8} {r['failures']:>6} {r['rps']:>8.2f} "
            f"{r['p50']:>8.3f} {r['p99']:>8.3f}"
        )
    if model is not None:
        t1, t16, bound = forward_bound(model, args)
        print(
            f"model forward alone: {t1:.1f} ms at batch 1, {t16:.1f} ms at batch 16, so one "
            f"batch of 16 is {bound:.1f}x faster than 16 single forwards (the ceiling where the "
            "forward dominates)"
        )
    speedup = rows[-1]["rps"] / rows[0]["rps"]
    ok = speedup >= 6 and not any(r["failures"] for r in rows)
    verdict = "PASS" if ok else "FAIL"
    print(f"throughput at 16 / at 1: {speedup:.1f}x (target >= 6x, no failures): {verdict}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
