"""The distributed mode a run got, checked; the sampling model when parameters are sharded.

The mode is checked against the one the run was launched for; with sharded parameters the
end-of-run samples come from a model loaded back from ``checkpoint-final``.

Design decisions:
- accelerate falls back silently when a DeepSpeed or FSDP launch cannot run as asked: with
  ``--use_cpu true`` (or ACCELERATE_USE_CPU) a DeepSpeed launch trains as plain DDP; FSDP is never
  set up on a CPU (``AcceleratorState`` in accelerate/state.py switches only GPU-like multi-device
  runs to FSDP); a multi-process launch that gets no distributed mode trains one unsynchronised
  copy per process. ``check_distributed`` turns each of these into an error before the first step;
  it also refuses a ZeRO-3 run whose saves would not gather the weights (checkpoint-final would
  hold DeepSpeed shards only).
- Under ZeRO-3 and FSDP each process holds a shard of every parameter: a forward on the main
  process alone would wait forever for the others' shards. The samples then come from
  ``checkpoint-final`` (already gathered into full weights) loaded back as one plain model, with
  ZeRO-3's partitioned loading (``zero.Init``) switched off while it loads.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from accelerate import Accelerator
from accelerate.utils import DistributedType
from transformers import Trainer

#: flags ``accelerate launch`` sets for a DeepSpeed / FSDP config, and the mode each asks for
LAUNCH_FLAGS = {
    "ACCELERATE_USE_DEEPSPEED": DistributedType.DEEPSPEED,
    "ACCELERATE_USE_FSDP": DistributedType.FSDP,
}

HINTS = {
    DistributedType.DEEPSPEED: (
        "--use_cpu true (or ACCELERATE_USE_CPU=true) switches DeepSpeed off in accelerate; on a "
        "machine without GPUs keep use_cpu false, leave ACCELERATE_USE_CPU unset and pass "
        "--ddp_backend gloo"
    ),
    DistributedType.FSDP: (
        "accelerate sets FSDP up only on GPUs and other accelerator devices, never on a CPU "
        "(AcceleratorState in accelerate/state.py); on a CPU use DDP or DeepSpeed"
    ),
}


def _flag(name: str) -> bool:
    return os.environ.get(name, "false").lower() in ("1", "true", "yes")


def _zero3_gathers_on_save(accelerator: Accelerator) -> bool:
    """Whether a ZeRO-3 save gathers the full 16-bit weights (DeepSpeed config)."""
    zero = accelerator.state.deepspeed_plugin.deepspeed_config.get("zero_optimization", {})
    keys = ("stage3_gather_16bit_weights_on_model_save", "gather_16bit_weights_on_model_save")
    return any(str(zero.get(k)).lower() == "true" for k in keys)


def check_distributed(accelerator: Accelerator, lora: bool = False) -> None:
    """Refuse a run whose distributed set-up would silently go wrong.

    Raises:
        ValueError: the run did not get the distributed mode it was launched for, ZeRO-3 would
            not save full weights, or LoRA over sharded parameters (ZeRO-3, FSDP): the end-of-run
            merge runs on the main process and needs the full weights there.
    """
    kind = accelerator.distributed_type
    zero = accelerator.state.deepspeed_plugin.zero_stage if kind == DistributedType.DEEPSPEED else 0
    if lora and (kind == DistributedType.FSDP or zero == 3):
        raise ValueError(
            f"LoRA under {'FSDP' if zero != 3 else 'ZeRO-3'} is not supported: merging the "
            "adapters into checkpoint-final needs the full weights on the main process. The "
            "adapters are small; train them with DDP or ZeRO-2 (configs/accelerate/zero2.yaml)"
        )
    for flag, wanted in LAUNCH_FLAGS.items():
        if _flag(flag) and kind != wanted:
            raise ValueError(
                f"launched for {wanted.value} but accelerate set up {kind.value}: {HINTS[wanted]}"
            )
    if zero == 3 and not _zero3_gathers_on_save(accelerator):
        raise ValueError(
            "ZeRO-3 without zero3_save_16bit_model: true (DeepSpeed: "
            "stage3_gather_16bit_weights_on_model_save) would leave checkpoint-final as "
            "DeepSpeed shards only, not a model that from_pretrained loads"
        )
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and (kind == DistributedType.NO or accelerator.num_processes != world):
        raise ValueError(
            f"{world} processes were launched but accelerate set up {kind.value} over "
            f"{accelerator.num_processes}, so each would train its own copy: on a machine "
            "without GPUs pass --use_cpu true and --ddp_backend gloo (DDP) or use a DeepSpeed "
            "config with --ddp_backend gloo"
        )


def describe(accelerator: Accelerator) -> dict:
    """``distributed_type`` and, for DeepSpeed / FSDP, ``zero_stage`` / ``fsdp_version``."""
    kind = accelerator.distributed_type
    out: dict = {"distributed_type": kind.value}
    if kind == DistributedType.DEEPSPEED:
        out["zero_stage"] = accelerator.state.deepspeed_plugin.zero_stage
    elif kind == DistributedType.FSDP:
        out["fsdp_version"] = accelerator.state.fsdp_plugin.fsdp_version
    return out


def _zero3(trainer: Trainer) -> bool:
    plugin = trainer.accelerator.state.deepspeed_plugin if trainer.is_deepspeed_enabled else None
    return plugin is not None and plugin.zero_stage == 3


def params_sharded(trainer: Trainer) -> bool:
    """Whether each process holds only a shard of the parameters (ZeRO-3, FSDP)."""
    return trainer.is_fsdp_enabled or _zero3(trainer)


@contextmanager
def _no_zero3_init(trainer: Trainer) -> Iterator[None]:
    """Inside, ``from_pretrained`` builds a plain model, not a ZeRO-3 partitioned one.

    While the Trainer's ZeRO-3 config is registered, transformers partitions every model it
    builds across the processes.
    """
    if not _zero3(trainer):
        yield
        return
    from transformers.integrations import unset_hf_deepspeed_config

    unset_hf_deepspeed_config()
    try:
        yield
    finally:
        trainer.accelerator.state.deepspeed_plugin.set_deepspeed_weakref()


def sampling_model(trainer: Trainer, final: Path):
    """The model the main process samples from.

    The trained one, or, when its parameters are sharded, ``final`` (checkpoint-final, full
    weights) loaded as one plain model.
    """
    from editflow_models import load_edit_flow_model

    from editflow_train.model_setup import base_model

    if not params_sharded(trainer):
        return base_model(trainer.accelerator.unwrap_model(trainer.model))
    with _no_zero3_init(trainer):
        return load_edit_flow_model(final).to(trainer.args.device)
