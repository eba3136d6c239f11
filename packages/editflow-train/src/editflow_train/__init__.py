"""editflow-train: continual pretraining and SFT of Edit Flow models on the HF Trainer.

``editflow-train pt|sft --config file.yaml`` (see ``cli.py``); the pieces are importable:
the config dataclasses, dataset specs, the collator (x0 + alignment + path in DataLoader
workers) and ``EditFlowTrainer``.
"""

import editflow_models  # noqa: F401  (first: its quiet start-up filters, see editflow_models.quiet)

from editflow_train.collator import EditFlowCollator
from editflow_train.config import DataArguments, EditFlowTrainingArguments, ModelArguments
from editflow_train.sources import load_dataset_spec, parse_dataset_spec
from editflow_train.trainer import EditFlowTrainer, latest_checkpoint

__all__ = [
    "DataArguments",
    "EditFlowCollator",
    "EditFlowTrainer",
    "EditFlowTrainingArguments",
    "ModelArguments",
    "latest_checkpoint",
    "load_dataset_spec",
    "parse_dataset_spec",
]
