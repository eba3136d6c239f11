"""``check_distributed`` on stand-in accelerators: every refusal, without launching processes."""

from types import SimpleNamespace

import pytest
from accelerate.utils import DistributedType
from editflow_train.distributed import check_distributed


def accel(kind: DistributedType, processes: int = 2, stage: int = 0, gather: bool = True):
    zero = {"stage": stage, "stage3_gather_16bit_weights_on_model_save": gather}
    plugin = SimpleNamespace(zero_stage=stage, deepspeed_config={"zero_optimization": zero})
    return SimpleNamespace(
        distributed_type=kind,
        num_processes=processes,
        state=SimpleNamespace(deepspeed_plugin=plugin),
    )


@pytest.fixture
def two_ranks(monkeypatch):
    for flag in ("ACCELERATE_USE_DEEPSPEED", "ACCELERATE_USE_FSDP"):
        monkeypatch.delenv(flag, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    return monkeypatch


def test_runs_that_got_what_they_asked_for_pass(two_ranks):
    check_distributed(accel(DistributedType.MULTI_CPU))
    check_distributed(accel(DistributedType.MULTI_CPU), lora=True)
    two_ranks.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    check_distributed(accel(DistributedType.DEEPSPEED, stage=2), lora=True)
    check_distributed(accel(DistributedType.DEEPSPEED, stage=3))


@pytest.mark.parametrize("flag", ["ACCELERATE_USE_DEEPSPEED", "ACCELERATE_USE_FSDP"])
def test_a_launch_that_fell_back_to_ddp_is_refused(two_ranks, flag):
    two_ranks.setenv(flag, "true")
    with pytest.raises(ValueError, match="launched for .* but accelerate set up MULTI_CPU"):
        check_distributed(accel(DistributedType.MULTI_CPU))


def test_processes_without_a_distributed_mode_are_refused(two_ranks):
    with pytest.raises(ValueError, match="each would train its own copy"):
        check_distributed(accel(DistributedType.NO, processes=1))


def test_zero3_that_would_not_save_full_weights_is_refused(two_ranks):
    two_ranks.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    with pytest.raises(ValueError, match="zero3_save_16bit_model"):
        check_distributed(accel(DistributedType.DEEPSPEED, stage=3, gather=False))


@pytest.mark.parametrize(
    "kind, stage, name",
    [(DistributedType.DEEPSPEED, 3, "ZeRO-3"), (DistributedType.FSDP, 0, "FSDP")],
)
def test_lora_over_sharded_parameters_is_refused(two_ranks, kind, stage, name):
    with pytest.raises(ValueError, match=f"LoRA under {name} is not supported.*ZeRO-2"):
        check_distributed(accel(kind, stage=stage), lora=True)
