"""Every shipped YAML under configs/{pt,sft,accelerate} opens with its purpose and launch line
and parses (training configs through the real parser, without downloading anything)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from editflow_train.cli import parse

from .conftest import REPO

TRAIN_CONFIGS = sorted((REPO / "configs" / "pt").glob("*.yaml")) + sorted(
    (REPO / "configs" / "sft").glob("*.yaml")
)
ACCELERATE_CONFIGS = sorted((REPO / "configs" / "accelerate").glob("*.yaml"))


def header(path: Path) -> str:
    lines = path.read_text().splitlines()
    comment = []
    for line in lines:
        if not line.startswith("#"):
            break
        comment.append(line)
    return "\n".join(comment)


def test_configs_exist():
    names = {p.name for p in TRAIN_CONFIGS}
    assert {"quickstart.yaml"} <= names
    assert len(TRAIN_CONFIGS) >= 7
    assert {p.stem for p in ACCELERATE_CONFIGS} >= {"ddp", "zero2", "zero3", "fsdp"}


@pytest.mark.parametrize(
    "path", TRAIN_CONFIGS + ACCELERATE_CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_opens_with_purpose_and_launch_line(path):
    text = header(path)
    assert len(text.splitlines()) >= 2, f"{path} must open with a comment"
    assert "Launch" in text or "launch" in text, f"{path}: no launch line"
    assert "editflow-train" in text or "accelerate launch" in text


@pytest.mark.parametrize("path", TRAIN_CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_training_config_parses(path):
    mode = path.parent.name
    # TrainingArguments refuses bf16 without a GPU: switch it off here, everything else as shipped
    cpu = [] if torch.cuda.is_available() else ["--bf16", "false"]
    model_args, data_args, args = parse(mode, ["--config", str(path), *cpu])
    assert data_args.dataset
    assert args.output_dir and args.output_dir.startswith("runs/")
    if data_args.streaming:
        assert args.max_steps > 0
    if model_args.load_in_4bit:
        assert model_args.lora


@pytest.mark.parametrize("path", ACCELERATE_CONFIGS, ids=lambda p: p.name)
def test_accelerate_config_keys(path):
    config = yaml.safe_load(path.read_text())
    for key in (
        "compute_environment",
        "distributed_type",
        "num_processes",
        "num_machines",
        "machine_rank",
        "mixed_precision",
    ):
        assert key in config, f"{path.name} lacks {key}"
    kind = path.stem
    expected = {"ddp": "MULTI_GPU", "zero2": "DEEPSPEED", "zero3": "DEEPSPEED", "fsdp": "FSDP"}
    assert config["distributed_type"] == expected[kind]
    if kind.startswith("zero"):
        assert config["deepspeed_config"]["zero_stage"] == int(kind[-1])
    if kind == "fsdp":
        assert config["fsdp_config"]["fsdp_version"] in (1, 2)
