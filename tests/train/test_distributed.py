"""Two-process training over gloo with the shipped accelerate configs: DDP and DeepSpeed ZeRO-2 /
ZeRO-3 on the CPU; FSDP2 where accelerate allows it (GPUs only).

accelerate falls back silently when a flag is missing (one process, plain DDP instead of
DeepSpeed, no FSDP on a CPU), so each test asserts the distributed type accelerate set up
(``summary.json``), two processes that each collated their own batches (recorded by
``distributed_probe.py``), a finite loss and, for the sharded modes, a ``checkpoint-final`` that
loads with ``AutoModel`` and differs from the starting weights.

- DDP on a CPU: ``--multi_gpu --num_processes 2``, ACCELERATE_USE_CPU=true, ``--use_cpu true
  --ddp_backend gloo`` (else ONE process starts).
- DeepSpeed on a CPU: ``--use_cpu true`` / ACCELERATE_USE_CPU switch DeepSpeed off in
  accelerate (the run would be plain DDP; editflow-train refuses it), so use_cpu stays false, no
  GPU is visible and ``--ddp_backend gloo`` is the backend DeepSpeed initialises.
- FSDP: accelerate turns a run into FSDP only on GPU-like devices (``AcceleratorState`` in
  accelerate/state.py); on a CPU editflow-train refuses the launch (tested), and the training
  test needs 2 GPUs.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from .conftest import REPO, SHAKESPEARE, cli_env, tiny_pt_config, write_config

PROBE = Path(__file__).with_name("distributed_probe.py")
STEPS, PER_DEVICE = 6, 4


def start_checkpoint(path: Path) -> Path:
    """An untrained tiny Edit Flow model and its BPE tokenizer, saved: the weights a run starts
    from are then known to the test."""
    from editflow_models import build_model_from_scratch
    from editflow_models.tokenizer import train_bpe_tokenizer

    tokenizer = train_bpe_tokenizer(SHAKESPEARE.read_text().split("\n\n"), 400)
    torch.manual_seed(0)
    model = build_model_from_scratch(
        "modernbert",
        vocab_size=len(tokenizer),
        anchor_token_id=tokenizer.bos_token_id,
        hidden_size=32,
        num_layers=2,
        num_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
        mask_token_id=tokenizer.mask_token_id,
        pad_token_id=tokenizer.pad_token_id,
        x0="masks[length:8-40]",
    )
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def launch(
    tmp_path: Path,
    accelerate_config: str,
    extra: list[str],
    *,
    env: dict[str, str],
    overrides: dict | None = None,
    backend: str = "gloo",
) -> subprocess.CompletedProcess:
    """``accelerate launch`` of a 6-step tiny pt run on 2 processes, through the batch probe."""
    cfg = write_config(
        tmp_path / "c.yaml",
        tiny_pt_config(
            tmp_path / "run",
            max_steps=STEPS,
            num_samples=1,
            per_device_train_batch_size=PER_DEVICE,
            logging_steps=2,
        )
        | (overrides or {}),
    )
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
        str(PROBE),
        "pt",
        "--config",
        str(cfg),
        "--ddp_backend",
        backend,
    ]
    env = env | {"EDITFLOW_BATCH_LOG": str(tmp_path / "batches")}
    (tmp_path / "batches").mkdir()
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def cpu_ddp_env() -> dict[str, str]:
    return cli_env() | {"ACCELERATE_USE_CPU": "true"}


def cpu_deepspeed_env() -> dict[str, str]:
    """No ACCELERATE_USE_CPU (it switches DeepSpeed off) and no GPU visible."""
    env = cli_env() | {"CUDA_VISIBLE_DEVICES": ""}
    env.pop("ACCELERATE_USE_CPU", None)
    return env


def finished(tmp_path: Path, result: subprocess.CompletedProcess) -> dict:
    """The run's summary.json, once the run exited 0 with a complete checkpoint-final."""
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "run" / "checkpoint-final" / "COMPLETE").is_file()
    return json.loads((tmp_path / "run" / "summary.json").read_text())


def check_two_sharded_processes(tmp_path: Path, summary: dict, **mode) -> None:
    """Two processes in the expected mode, each on its own batches, with a finite loss."""
    assert summary["num_processes"] == 2
    for key, value in mode.items():
        assert summary[key] == value, (key, summary)
    assert summary["global_step"] == STEPS
    assert math.isfinite(summary["train_loss"])
    if summary["train_sequences"] is not None:  # a stream has no length, hence no epochs
        # 6 steps x 4 per device x 2 processes = 48 sequences (unsharded: half this fraction)
        assert summary["epoch"] * summary["train_sequences"] == pytest.approx(48, abs=1.0)
    logs = sorted((tmp_path / "batches").iterdir())
    assert [p.name for p in logs] == ["rank0.jsonl", "rank1.jsonl"]
    seen = []
    for log in logs:
        batches = [json.loads(line) for line in log.read_text().splitlines()]
        assert len(batches) >= STEPS  # the dataloader may fetch one batch ahead
        assert all(len(b) == PER_DEVICE for b in batches[:STEPS])
        seen.append({tuple(x1) for b in batches[:STEPS] for x1 in b})
    assert seen[0].isdisjoint(seen[1])  # unsharded processes would collate the same batches


def check_trained_checkpoint(final: Path, start: Path) -> None:
    """``final`` loads with AutoModel, complete (every weight full-size) and trained (changed)."""
    import editflow_models  # noqa: F401  (registers the editflow model type)
    from transformers import AutoModel

    model, info = AutoModel.from_pretrained(final, output_loading_info=True)
    assert not (info["missing_keys"] or info["unexpected_keys"] or info["mismatched_keys"]), info
    before = dict(AutoModel.from_pretrained(start).named_parameters())
    after = dict(model.named_parameters())
    assert after.keys() == before.keys()
    for name, weight in after.items():
        assert weight.shape == before[name].shape and weight.numel() > 0, name
        assert torch.isfinite(weight).all(), name
    unchanged = [n for n in before if torch.equal(after[n], before[n])]
    assert not unchanged, unchanged


#: ragged batches: several forwards per step before one backward (DDP arms its gradient
#: reduction at every forward; ZeRO-3 gathers the parameters at every forward); x0 =
#: masks[length:8-40] makes x_t lengths vary
RAGGED = {"max_tokens_per_forward": 64}


#: a streamed dataset: accelerate would dispatch process 0's batches, sliced along dim 0
STREAMING = {"streaming": True}


@pytest.mark.parametrize(
    "overrides", [{}, RAGGED, STREAMING], ids=["padded", "ragged", "streaming"]
)
def test_ddp_two_processes(tmp_path, overrides):
    result = launch(
        tmp_path,
        "ddp.yaml",
        ["--multi_gpu", "--dynamo_backend", "no"],
        env=cpu_ddp_env(),
        overrides=overrides,
    )
    check_two_sharded_processes(tmp_path, finished(tmp_path, result), distributed_type="MULTI_CPU")


def run_deepspeed(tmp_path: Path, stage: int, overrides: dict | None = None) -> None:
    """ZeRO-<stage> from a saved checkpoint (ZeRO-3 loads it partitioned: zero3_init_flag)."""
    start = start_checkpoint(tmp_path / "start")
    result = launch(
        tmp_path,
        f"zero{stage}.yaml",
        [],
        env=cpu_deepspeed_env(),
        overrides={"use_cpu": False, "model_name_or_path": str(start)} | (overrides or {}),
    )
    summary = finished(tmp_path, result)
    check_two_sharded_processes(tmp_path, summary, distributed_type="DEEPSPEED", zero_stage=stage)
    check_trained_checkpoint(tmp_path / "run" / "checkpoint-final", start)
    assert summary["samples"]  # under ZeRO-3 sampled from checkpoint-final, main process alone


@pytest.mark.slow
@pytest.mark.parametrize("overrides", [{}, RAGGED], ids=["padded", "ragged"])
def test_deepspeed_zero2_two_processes(tmp_path, overrides):
    run_deepspeed(tmp_path, 2, overrides)


@pytest.mark.slow
@pytest.mark.parametrize("overrides", [{}, RAGGED], ids=["padded", "ragged"])
def test_deepspeed_zero3_two_processes(tmp_path, overrides):
    """checkpoint-final holds the gathered weights (zero3_save_16bit_model), in fp32 here, the
    training dtype: bf16 on a CPU needs --use_cpu true, which switches DeepSpeed off."""
    run_deepspeed(tmp_path, 3, overrides)


@pytest.mark.slow
@pytest.mark.skipif(
    torch.cuda.device_count() < 2,
    reason="FSDP needs 2 GPUs: accelerate sets FSDP up only for GPU-like multi-device runs "
    "(AcceleratorState.__init__, accelerate/state.py), a CPU run stays MULTI_CPU / NO",
)
def test_fsdp2_two_processes(tmp_path):
    """FSDP2 on 2 GPUs; checkpoint-final is a full state dict. ModernBERT needs the layer class
    named: with the default TRANSFORMER_BASED_WRAP, accelerate wraps ModernBertEmbeddings (in
    _no_split_modules) and then its tok_embeddings again, which fully_shard rejects."""
    start = start_checkpoint(tmp_path / "start")
    env = cli_env()
    env.pop("ACCELERATE_USE_CPU", None)
    result = launch(
        tmp_path,
        "fsdp.yaml",
        ["--fsdp_transformer_layer_cls_to_wrap", "ModernBertEncoderLayer"],
        env=env,
        overrides={"use_cpu": False, "model_name_or_path": str(start)},
        backend="nccl",
    )
    summary = finished(tmp_path, result)
    check_two_sharded_processes(tmp_path, summary, distributed_type="FSDP", fsdp_version=2)
    check_trained_checkpoint(tmp_path / "run" / "checkpoint-final", start)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("config", "error"),
    [
        ("fsdp.yaml", "launched for FSDP but accelerate set up MULTI_CPU"),
        ("zero3.yaml", "launched for DEEPSPEED but accelerate set up MULTI_CPU"),
    ],
    ids=["fsdp", "zero3"],
)
def test_cpu_launch_that_would_fall_back_to_ddp_is_refused(tmp_path, config, error):
    """With the DDP CPU flags, accelerate quietly trains an FSDP / DeepSpeed launch as DDP."""
    result = launch(tmp_path, config, [], env=cpu_ddp_env())
    assert result.returncode != 0
    assert error in result.stderr
    assert not list((tmp_path / "batches").iterdir())  # refused before the first batch
    assert not (tmp_path / "run" / "checkpoint-final").exists()
