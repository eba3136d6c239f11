"""The batching engine on the tiny model: batch invariance, the running cap, faults; CLI config."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from editflow_core import SamplingParams
from editflow_models import load_generation_setup
from editflow_serve import Engine, EngineError, SeqRequest
from editflow_serve.cli import build_parser, parse_args

REPO = Path(__file__).resolve().parents[2]


async def run_all(engine: Engine, seqs: list[SeqRequest]):
    handles = engine.submit(seqs)
    return await asyncio.gather(*(f for _, f in handles), return_exceptions=True)


def test_continuous_batching_is_per_request_and_capped(tiny_model_dir):
    """Sequences joining at different steps with different settings give their solo results."""
    torch.set_num_threads(1)
    info = load_generation_setup(tiny_model_dir)
    seqs = [
        SeqRequest(
            [info.anchor_token_id, 40 + i],
            [info.mask_token_id] * (i % 3),
            SamplingParams(
                steps=3 + 2 * i, temperature=0.5 + 0.1 * i, top_k=i, seed=100 + i, max_new_tokens=12
            ),
        )
        for i in range(5)
    ]
    solo = []
    for s in seqs:
        sampler = info.sampler()
        solo.append(sampler.generate([s.prefix], [s.x0], [s.params])[0])
    engine = Engine(lambda: info, max_running=2, max_queued=10)
    engine.start()
    assert engine.wait_ready(60)
    sizes = []
    step = engine.sampler.step
    engine.sampler.step = lambda: (
        sizes.append(engine.sampler.num_running + engine.sampler.num_pending),
        step(),
    )[1]
    try:
        results = asyncio.run(run_all(engine, seqs))
    finally:
        engine.stop()
    assert [r.tokens for r in results] == [r.tokens for r in solo]
    assert [r.steps for r in results] == [s.params.steps for s in seqs]
    assert max(sizes) == 2  # never more than max_running in the batch
    assert engine.state == "stopped"


def test_queue_bound_and_fault(tiny_model_dir):
    info = load_generation_setup(tiny_model_dir)

    def broken(*args, **kw):
        raise RuntimeError("kaboom")

    engine = Engine(lambda: replace(info, model=broken), max_running=1, max_queued=1)
    engine.start()
    assert engine.wait_ready(60)
    seq = SeqRequest([info.anchor_token_id], [], SamplingParams(steps=2))

    async def go():
        with pytest.raises(EngineError) as err:
            engine.submit([seq, seq, seq])  # 3 > 1 running + 1 queued
        assert err.value.status == 429
        return await run_all(engine, [seq])

    (result,) = asyncio.run(go())
    assert isinstance(result, EngineError) and result.status == 500
    assert engine.state == "fault" and "kaboom" in engine.error
    engine.stop()


def test_load_failure_is_a_fault(tmp_path):
    engine = Engine(lambda: load_generation_setup(tmp_path / "missing"))
    engine.start()
    assert not engine.wait_ready(60)
    assert engine.state == "fault" and "loading the model failed" in engine.error


def test_every_serve_yaml_parses_and_opens_with_a_launch_comment():
    files = sorted((REPO / "configs" / "serve").glob("*.yaml"))
    assert files
    flags = {a.dest for a in build_parser()._actions}
    for f in files:
        text = f.read_text()
        assert text.startswith("#") and f"--config configs/serve/{f.name}" in text.split("\n\n")[0]
        args = parse_args(["--config", str(f)])
        assert args.port == 8000 and args.max_running >= 1
        assert set(args.__dict__) <= flags


def test_cli_flags_override_yaml(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("# test\nport: 9001\nsteps: 7\n")
    args = parse_args(["--config", str(cfg), "--steps", "9"])
    assert (args.port, args.steps) == (9001, 9)
    cfg.write_text("bogus_key: 1\n")
    with pytest.raises(SystemExit):
        parse_args(["--config", str(cfg)])


def test_no_model_exits_with_how_to_train_or_convert(tmp_path, monkeypatch):
    from editflow_serve.cli import resolve_model

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as err:
        resolve_model(None)
    msg = str(err.value)
    assert "editflow-train pt --config configs/pt/quickstart.yaml" in msg
    assert "editflow convert --model SRC --output DIR" in msg


def test_dtype_flag_loads_the_weights_in_that_dtype(tiny_model_dir):
    assert parse_args(["--dtype", "bf16"]).dtype == "bf16"
    assert parse_args([]).dtype == "auto"
    setup = load_generation_setup(tiny_model_dir, "cpu", "bf16")
    assert {p.dtype for p in setup.model.parameters()} == {torch.bfloat16}
    with pytest.raises(SystemExit):
        parse_args(["--dtype", "half"])


def test_ragged_forwards_are_on_by_default_on_a_cpu_and_change_no_sample(tiny_model_dir):
    assert Engine(lambda: None).max_tokens_per_forward == 4096
    assert Engine(lambda: None, device="cuda").max_tokens_per_forward == 0
    assert Engine(lambda: None, max_tokens_per_forward=0).max_tokens_per_forward == 0
    with pytest.raises(SystemExit):
        parse_args(["--max-tokens-per-forward", "-5"])
    setup = load_generation_setup(tiny_model_dir)
    prefixes = [[setup.anchor_token_id] + [7] * n for n in (0, 30, 3, 12)]
    results = []
    for budget in (0, 16):
        sampler = setup.sampler(max_tokens_per_forward=budget)
        params = [SamplingParams(steps=8, seed=i, max_new_tokens=16) for i in range(4)]
        results.append([r.tokens for r in sampler.generate(prefixes, params=params)])
    assert results[0] == results[1]


def test_guided_requests_run_on_the_real_model(tiny_model_dir):
    """Guidance through a real EditFlowModel (rates-first forward, RowCache, ragged groups):
    prompted rows with g > 0 next to plain ones; g = 0 rows keep their plain samples."""
    setup = load_generation_setup(tiny_model_dir)
    prompt = setup.chat_prefix([{"role": "user", "content": "Hi there"}])
    prefixes = [prompt, prompt, [setup.anchor_token_id]]

    def run(g):
        params = [
            SamplingParams(steps=8, seed=i, max_new_tokens=12, guidance_scale=s)
            for i, s in enumerate((g, 0.0, g))
        ]
        sampler = setup.sampler(max_tokens_per_forward=64)
        return [r.tokens for r in sampler.generate(prefixes, params=params)]

    plain, guided = run(0.0), run(3.0)
    assert guided[0] != plain[0]  # the guided prompted row changed
    assert guided[2] == plain[2]  # no prompt: nothing to guide
    assert all(r[: len(prompt)] == prompt for r in guided[:2])
