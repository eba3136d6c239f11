"""``checkpoint-final``: model, config and tokenizer, written atomically, LoRA merged.

The directory is written under a temporary name, marked ``COMPLETE`` and renamed into place:
an interrupted save leaves only ``.checkpoint-final.tmp``, never a ``checkpoint-final`` that
looks complete. A LoRA run is merged into plain weights first, so ``editflow-serve`` and
``AutoModel.from_pretrained`` load it like any other Edit Flow checkpoint; a 4-bit (QLoRA) run
re-loads its base unquantised and merges the adapters into it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from transformers import PreTrainedTokenizerBase, Trainer

from editflow_train.trainer import COMPLETE

FINAL = "checkpoint-final"


def _merge_lora(trainer: Trainer, tmp: Path, base_checkpoint: str | None, quantized: bool) -> None:
    """Write the merged weights of a LoRA model into ``tmp`` (main process)."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    if not quantized:
        model.merge_and_unload().save_pretrained(tmp)
        return
    from editflow_models import load_edit_flow_model
    from peft import PeftModel

    adapter = tmp.with_name(tmp.name + "-adapter")
    model.save_pretrained(adapter)
    base = load_edit_flow_model(base_checkpoint, dtype="bfloat16")
    PeftModel.from_pretrained(base, adapter).merge_and_unload().save_pretrained(tmp)
    shutil.rmtree(adapter)


def save_final(
    trainer: Trainer,
    tokenizer: PreTrainedTokenizerBase,
    *,
    lora: bool = False,
    quantized: bool = False,
    base_checkpoint: str | None = None,
) -> Path:
    """Write ``<output_dir>/checkpoint-final`` atomically; returns its path. Call on every rank."""
    out = Path(trainer.args.output_dir)
    final, tmp = out / FINAL, out / f".{FINAL}.tmp"
    if trainer.is_world_process_zero():
        shutil.rmtree(tmp, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    if lora:
        if trainer.is_world_process_zero():
            _merge_lora(trainer, tmp, base_checkpoint, quantized)
    else:
        if trainer.is_fsdp_enabled:  # one full state dict, not shards
            trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
        trainer.save_model(str(tmp))  # gathers ZeRO-3 / FSDP shards
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(tmp)
        (tmp / COMPLETE).write_text("final\n")
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
    trainer.accelerator.wait_for_everyone()
    return final
