"""``EditFlowTrainer``: a ``transformers.Trainer`` whose loss is the Edit Flow loss.

The batch is a sampled path (built by ``EditFlowCollator`` in the DataLoader); ``compute_loss``
runs the model on x_t with the edit rows and calls ``editflow_core.edit_flow_loss``.

Design decisions:
- Every head takes part in every step's graph: a batch without substitutions would otherwise
  leave ``sub_head`` out, which stalls DDP / ZeRO / FSDP gradient reduction. The token logits
  enter the loss with weight 0, which costs nothing.
- The loss parts (outflow, edit term) and edit counts are averaged over the logging window and
  logged with the loss (``eval_``-prefixed during evaluation), plus tokens/s of x_t.
- Evaluation computes the loss only: ``prediction_step`` returns no logits, so nothing (B, L, V)
  is ever accumulated.
- A checkpoint counts as complete only once ``COMPLETE`` is written into it, after the Trainer
  has saved model, optimizer, scheduler, RNG and trainer state; ``latest_checkpoint`` ignores
  the rest, so a save killed halfway is never resumed from.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import torch
from editflow_core import PathSample, Scheduler, edit_flow_loss
from transformers import Trainer, TrainerCallback

COMPLETE = "COMPLETE"


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The complete ``checkpoint-N`` with the largest N in ``output_dir``, or ``None``."""
    done = [
        p
        for p in Path(output_dir).glob("checkpoint-*")
        if p.name.split("-")[-1].isdigit() and (p / COMPLETE).is_file()
    ]
    return max(done, key=lambda p: int(p.name.split("-")[-1]), default=None)


class TimeBudget(TrainerCallback):
    """Stops training once ``seconds`` of wall time have passed since ``on_train_begin``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start = time.perf_counter()

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if time.perf_counter() - self.start > self.seconds:
            control.should_training_stop = True
        return control


class EditFlowTrainer(Trainer):
    """Trainer for Edit Flow models; extra args: the kappa scheduler, the loss normalisation and
    the loss's clamp on w(t) (see ``editflow_core.edit_flow_loss``)."""

    def __init__(
        self,
        *args,
        scheduler: Scheduler,
        normalize: str = "batch_tokens",
        max_weight: float | None = 20.0,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.kappa = scheduler
        self.normalize = normalize
        self.max_weight = max_weight
        self._sums: dict[str, dict[str, float]] = {
            "train": defaultdict(float),
            "eval": defaultdict(float),
        }
        self._window_start = time.perf_counter()

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The Edit Flow loss of one batch (a sampled path as a dict of tensors)."""
        path = PathSample(**inputs)
        out = model(**path.model_inputs())
        parts = edit_flow_loss(
            out, path, self.kappa, normalize=self.normalize, max_weight=self.max_weight
        )
        # keep both token heads in the graph even when a batch has no edit of their kind
        loss = parts.loss + 0.0 * (out.ins_logits.sum() + out.sub_logits.sum())
        sums = self._sums["train" if model.training else "eval"]
        sums["batches"] += 1
        sums["outflow"] += float(parts.outflow)
        sums["edit"] += float(parts.edit)
        sums["n_ins"] += parts.n_ins
        sums["n_del"] += parts.n_del
        sums["n_sub"] += parts.n_sub
        sums["tokens"] += float(path.attention_mask.sum())
        return (loss, out) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """Evaluation: the loss only, never logits."""
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the averaged loss parts and edit counts of the window to the Trainer's logs."""
        split, prefix = ("eval", "eval_") if "eval_loss" in logs else ("train", "")
        sums = self._sums[split]
        if ("loss" in logs or split == "eval") and sums["batches"]:
            n = sums["batches"]
            logs[f"{prefix}outflow"] = round(sums["outflow"] / n, 4)
            logs[f"{prefix}edit_term"] = round(sums["edit"] / n, 4)
            for key in ("n_ins", "n_del", "n_sub"):
                logs[f"{prefix}{key}"] = round(sums[key] / n, 1)
            if split == "train":
                now = time.perf_counter()
                logs["tokens_per_second"] = round(sums["tokens"] / (now - self._window_start), 1)
                self._window_start = now
            sums.clear()
        super().log(logs, start_time)

    def _save_checkpoint(self, model, trial) -> None:
        """Save as the Trainer does, then mark the checkpoint complete."""
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            run_dir = self._get_output_dir(trial=trial)
            ckpt = Path(run_dir) / f"checkpoint-{self.state.global_step}"
            (ckpt / COMPLETE).write_text(f"{self.state.global_step}\n")
