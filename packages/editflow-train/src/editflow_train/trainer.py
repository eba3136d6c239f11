"""``EditFlowTrainer``: a ``transformers.Trainer`` whose loss is the Edit Flow loss.

The batch is a sampled path (built by ``EditFlowCollator`` in the DataLoader); ``compute_loss``
runs the model on x_t with the edit rows and calls ``editflow_core.edit_flow_loss``.

Design decisions:
- Every head takes part in every step's graph: a batch without substitutions would otherwise
  leave ``sub_head`` out, which stalls DDP / ZeRO / FSDP gradient reduction. The token logits
  enter the loss with weight 0, which costs nothing.
- The loss parts (outflow, edit term) and edit counts are averaged over the logging window and
  logged with the loss (``eval_``-prefixed during evaluation), plus tokens/s of x_t.
- Evaluation computes the loss, never logits (``prediction_step``), and, when
  ``nll_bound_samples`` > 0, the held-out likelihood bound (``eval_nll_bound`` nats per token,
  ``eval_bpc`` bits per character, with standard errors; ``evaluation.heldout_bound``), so two
  runs compare by a number that does not depend on their loss settings. It is skipped (once
  logged) when the parameters are sharded (ZeRO-3 / FSDP): ``editflow eval`` scores
  ``checkpoint-final`` instead.
- A checkpoint counts as complete only once ``COMPLETE`` is written into it, after the Trainer
  has saved model, optimizer, scheduler, RNG and trainer state; ``latest_checkpoint`` ignores
  the rest, so a save killed halfway is never resumed from.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from pathlib import Path

import torch
from editflow_core import PathSample, Scheduler, edit_flow_loss, reverse_flow_loss
from transformers import Trainer, TrainerCallback

COMPLETE = "COMPLETE"
logger = logging.getLogger(__name__)


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
        """Start the clock."""
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        """Ask the Trainer to stop once the budget is spent."""
        if time.perf_counter() - self.start > self.seconds:
            control.should_training_stop = True
        return control


class EditFlowTrainer(Trainer):
    """A ``transformers.Trainer`` whose loss is the Edit Flow loss.

    It takes the Trainer's own arguments, with the batches of an ``EditFlowCollator``, plus
    three keyword arguments for the loss (see ``editflow_core.edit_flow_loss``).

    Args:
        scheduler: the kappa scheduler of the collator's paths; it gives w(t).
        normalize: the loss normalisation: ``"batch_tokens"`` (default; unbiased rates),
            ``"none"`` or ``"x1_length"`` (biases rates towards short targets).
        max_weight: the clamp on w(t) in the loss (``None``: no clamp); training only, the
            sampler never clamps.
    """

    def __init__(
        self,
        *args,
        scheduler: Scheduler,
        normalize: str = "batch_tokens",
        max_weight: float | None = 20.0,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.scheduler = scheduler
        self.normalize = normalize
        self.max_weight = max_weight
        self._bound_logs: dict[str, float] = {}
        self._sums: dict[str, dict[str, float]] = {
            "train": defaultdict(float),
            "eval": defaultdict(float),
        }
        self._window_start = time.perf_counter()

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The Edit Flow loss of one batch.

        A batch is a sampled path as a dict of tensors, or (ragged batches)
        ``{"groups": [path fields, ...], "batch_totals": (rows, tokens)}``, whose groups'
        losses, normalised by the batch's totals, sum to the batch loss.
        """
        if "groups" in inputs:
            groups = [PathSample(**g) for g in inputs["groups"]]
            rows, tokens = inputs["batch_totals"].tolist()
            totals = (int(rows), tokens)
        else:
            groups, totals = [PathSample(**inputs)], None
        sums = self._sums["train" if model.training else "eval"]
        sums["batches"] += 1
        loss = 0.0
        config = getattr(getattr(self, "model", None), "config", None)
        uses_given = bool(getattr(config, "given_embedding", False))
        for path in groups:
            kwargs = path.model_inputs()
            if uses_given:  # the model reads which tokens are given (anchor + prompt)
                kwargs["given"] = path.given()
            out = model(**kwargs)
            parts = edit_flow_loss(
                out,
                path,
                self.scheduler,
                normalize=self.normalize,
                max_weight=self.max_weight,
                batch_totals=totals,
            )
            # keep both token heads in the graph even when a batch has no edit of their kind
            loss = loss + parts.loss + 0.0 * (out.ins_logits.sum() + out.sub_logits.sum())
            reverse = getattr(out, "reverse_rates", None)
            if reverse is not None:  # self-correction: the same loss backward in time
                rev = reverse_flow_loss(
                    reverse, path, self.scheduler, self.normalize, self.max_weight, totals
                )
                loss = loss + rev
                sums["reverse"] += float(rev)
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

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
        """The Trainer's evaluation, plus the likelihood bound on the evaluation set."""
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        self._bound_logs = self.heldout_bound(dataset) if dataset is not None else {}
        return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)

    def heldout_bound(self, dataset) -> dict[str, float]:
        """``evaluation.heldout_bound`` of the model being trained, on ``dataset``.

        ``{}`` when the bound is off or the parameters are sharded.
        """
        samples = getattr(self.args, "nll_bound_samples", 0)
        if samples <= 0 or dataset is None:
            return {}
        from editflow_models import generation_setup

        from editflow_train.distributed import params_sharded
        from editflow_train.evaluation import heldout_bound
        from editflow_train.model_setup import base_model

        if params_sharded(self):
            logger.info("likelihood bound skipped: sharded parameters (run `editflow eval`)")
            return {}
        model = base_model(self.accelerator.unwrap_model(self.model))
        setup = generation_setup(model, self.processing_class)
        return heldout_bound(
            setup,
            dataset,
            samples=samples,
            max_sequences=self.args.nll_bound_max_sequences,
            seed=self.args.seed,
            batch_size=self.args.per_device_eval_batch_size,
        )

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
            if "reverse" in sums:
                logs[f"{prefix}reverse_loss"] = round(sums["reverse"] / n, 4)
            if split == "train":
                now = time.perf_counter()
                logs["tokens_per_second"] = round(sums["tokens"] / (now - self._window_start), 1)
                self._window_start = now
            sums.clear()
        if split == "eval" and self._bound_logs:
            for key in ("nll_bound", "nll_bound_se", "bpc", "bpc_se"):
                logs[f"eval_{key}"] = round(self._bound_logs[key], 4)
            self._bound_logs = {}
        super().log(logs, start_time)

    def _save_checkpoint(self, model, trial) -> None:
        """Save as the Trainer does, then mark the checkpoint complete."""
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            run_dir = self._get_output_dir(trial=trial)
            ckpt = Path(run_dir) / f"checkpoint-{self.state.global_step}"
            (ckpt / COMPLETE).write_text(f"{self.state.global_step}\n")
