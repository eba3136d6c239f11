"""Fixtures for the editflow-train tests: tiny configs over the shipped data, CLI helpers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SHAKESPEARE = REPO / "data" / "tiny-shakespeare.txt"
CHAT = REPO / "data" / "chat-seed-tasks.jsonl"
ALPACA = REPO / "data" / "alpaca-seed-tasks.jsonl"


def tiny_pt_config(output_dir: Path, **overrides) -> dict:
    """A pt config for a 2-layer, hidden-32 model that trains in seconds on the CPU."""
    config = {
        "dataset": f"{SHAKESPEARE}[train:600,test:40]",
        "max_length": 32,
        "tokenizer_vocab_size": 400,
        "hidden_size": 32,
        "num_layers": 2,
        "num_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 256,
        "x0_sampler": "masks[length:8-40]",
        "output_dir": str(output_dir),
        "max_steps": 30,
        "per_device_train_batch_size": 8,
        "learning_rate": 3e-3,
        "warmup_steps": 0,
        "logging_steps": 5,
        "save_strategy": "no",
        "use_cpu": True,
        "torch_num_threads": 1,
        "seed": 0,
        "num_samples": 2,
        "sample_steps": 8,
        "sample_max_new_tokens": 16,
        "disable_tqdm": True,
    }
    return config | overrides


def write_config(path: Path, config: dict) -> Path:
    """Write a YAML config file; returns its path."""
    path.write_text("# test config\n" + yaml.safe_dump(config))
    return path


def cli_env() -> dict[str, str]:
    """Environment for CLI subprocesses: offline, one thread."""
    env = dict(os.environ)
    env |= {
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1",
    }
    return env


def run_cli(args: list[str], timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """Run ``python -m editflow_train.cli ARGS`` in the repo root."""
    return subprocess.run(
        [sys.executable, "-m", "editflow_train.cli", *args],
        cwd=REPO,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def log_history(checkpoint_or_run: Path) -> list[dict]:
    """The Trainer's log history of a checkpoint directory (trainer_state.json)."""
    return json.loads((checkpoint_or_run / "trainer_state.json").read_text())["log_history"]


@pytest.fixture(scope="session")
def pt_run(tmp_path_factory) -> dict:
    """One tiny in-process pt run, shared: its output dir, initial and final weights, logs."""
    import torch
    from editflow_train import run as run_module
    from editflow_train.cli import main

    out = tmp_path_factory.mktemp("pt") / "run"
    initial: dict[str, torch.Tensor] = {}
    trainers = []
    build = run_module.load_or_build_model
    original_trainer = run_module.EditFlowTrainer

    def recording_build(*args, **kwargs):
        model = build(*args, **kwargs)
        initial.update(
            {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
        )
        return model

    class RecordingTrainer(original_trainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            trainers.append(self)

    cfg = write_config(
        out.parent / "pt.yaml",
        tiny_pt_config(out, max_steps=40, eval_strategy="steps", eval_steps=20),
    )
    run_module.load_or_build_model = recording_build
    run_module.EditFlowTrainer = RecordingTrainer
    try:
        rc = main(["pt", "--config", str(cfg)])
    finally:
        run_module.load_or_build_model = build
        run_module.EditFlowTrainer = original_trainer
    assert rc == 0
    trainer = trainers[0]
    final = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    return {"out": out, "initial": initial, "final": final, "logs": trainer.state.log_history}
