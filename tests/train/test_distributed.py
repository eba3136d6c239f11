"""Two-process CPU training over gloo with the shipped accelerate configs (DDP, DeepSpeed ZeRO-2).

ENVIRONMENT.md: on CPU, ``accelerate launch`` needs ``--multi_gpu --num_processes 2`` with
ACCELERATE_USE_CPU=true (else ONE process starts), the Trainer ``use_cpu`` + ``ddp_backend gloo``
(else DeepSpeed ranks train unsharded); so every test asserts two processes and sharded data.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import REPO, cli_env, tiny_pt_config, write_config


def launch(tmp_path, accelerate_config: str, extra: list[str]) -> dict:
    out = tmp_path / "run"
    cfg = write_config(
        tmp_path / "c.yaml",
        tiny_pt_config(
            out, max_steps=6, num_samples=1, per_device_train_batch_size=4, logging_steps=2
        ),
    )
    env = cli_env() | {"ACCELERATE_USE_CPU": "true"}
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(REPO / "configs" / "accelerate" / accelerate_config),
        *extra,
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "-m",
        "editflow_train.cli",
        "pt",
        "--config",
        str(cfg),
        "--ddp_backend",
        "gloo",
    ]
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.loads((out / "summary.json").read_text())
    assert (out / "checkpoint-final" / "COMPLETE").is_file()
    return summary


def check_two_sharded_processes(summary: dict) -> None:
    assert summary["num_processes"] == 2
    assert summary["global_step"] == 6
    # each process sees its own shard: 6 steps x 4 per device x 2 processes = 48 sequences
    # (unsharded ranks would report half this epoch fraction)
    assert summary["epoch"] * summary["train_sequences"] == pytest.approx(48, abs=1.0)


def test_ddp_two_processes(tmp_path):
    summary = launch(tmp_path, "ddp.yaml", ["--multi_gpu", "--dynamo_backend", "no"])
    check_two_sharded_processes(summary)


@pytest.mark.slow
def test_deepspeed_zero2_two_processes(tmp_path):
    summary = launch(tmp_path, "zero2.yaml", [])
    check_two_sharded_processes(summary)
