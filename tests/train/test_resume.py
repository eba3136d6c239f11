"""Checkpoints resume exactly where they left off, even after SIGKILL mid-run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from editflow_train.run import resolve_resume
from editflow_train.trainer import latest_checkpoint

from .conftest import REPO, cli_env, log_history, run_cli, tiny_pt_config, write_config


def test_incomplete_checkpoints_are_never_resumed(tmp_path):
    for step, complete in ((4, True), (8, True), (12, False)):
        ckpt = tmp_path / f"checkpoint-{step}"
        ckpt.mkdir()
        (ckpt / "trainer_state.json").write_text("{}")
        if complete:
            (ckpt / "COMPLETE").write_text(f"{step}\n")
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-8"
    assert resolve_resume("latest", str(tmp_path)) == str(tmp_path / "checkpoint-8")
    with pytest.raises(ValueError, match="not a complete checkpoint"):
        resolve_resume(str(tmp_path / "checkpoint-12"), str(tmp_path))
    assert resolve_resume("latest", str(tmp_path / "nothing")) is None


def test_sigkill_then_resume(tmp_path):
    out = tmp_path / "run"
    cfg = write_config(
        tmp_path / "c.yaml",
        tiny_pt_config(
            out,
            max_steps=100000,
            save_strategy="steps",
            save_steps=4,
            logging_steps=2,
            num_samples=0,
            lr_scheduler_type="constant",
        ),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "editflow_train.cli", "pt", "--config", str(cfg)],
        cwd=REPO,
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 240
        while time.time() < deadline and not (out / "checkpoint-8" / "COMPLETE").is_file():
            assert proc.poll() is None, "training exited early"
            time.sleep(0.2)
        assert (out / "checkpoint-8" / "COMPLETE").is_file(), "no checkpoint within the deadline"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    killed_at = latest_checkpoint(out)
    step = int(killed_at.name.split("-")[1])
    assert step >= 8 and not (out / "checkpoint-final").exists()
    before = log_history(killed_at)

    result = run_cli(
        [
            "pt",
            "--config",
            str(cfg),
            "--max_steps",
            str(step + 4),
            "--resume_from_checkpoint",
            "latest",
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"(step {step})" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed_from_step"] == step and summary["global_step"] == step + 4
    after = log_history(out / f"checkpoint-{step + 4}")
    # the history up to the kill is carried over unchanged, then training continues after it
    assert after[: len(before)] == before
    new_steps = [e["step"] for e in after[len(before) :] if "loss" in e]
    assert new_steps == [step + 2, step + 4]
