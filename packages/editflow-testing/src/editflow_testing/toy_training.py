"""The toy language that training tests and the sampling benchmark learn, and its tiny config.

The language: "ab" (0.5), "baa" (0.3), "c" (0.2), one string per x1. ``toy_config`` is the
2-layer BERT that ``editflow-train`` learns it with in about a minute on one CPU thread
(``tests/train/test_learns_toy_language.py`` says why BERT and why this budget).
"""

from __future__ import annotations

from pathlib import Path

#: string -> its probability in the toy language
TOY_LANGUAGE: dict[str, float] = {"ab": 0.5, "baa": 0.3, "c": 0.2}


def write_toy_language(path: Path) -> Path:
    """Write the language as 100 lines in proportion to its probabilities; returns ``path``."""
    lines = [text for text, p in TOY_LANGUAGE.items() for _ in range(round(100 * p))]
    path.write_text("\n".join(lines) + "\n")
    return path


def toy_config(data: str | Path, out: str | Path, x0_spec: str, **overrides) -> dict:
    """The ``editflow-train`` config (as a dict of YAML keys) of a toy run.

    Args:
        data: the dataset (a .txt of one string per line, or a .jsonl of records for sft).
        out: the output directory; the model lands in ``out/checkpoint-final``.
        x0_spec: the source distribution (``"empty"``, ``"masks[length:3]"``, ...).
        **overrides: keys that replace or add to the defaults (``reverse_rates``, ``lam_prop``,
            ``max_length``, ...).
    """
    return {
        "dataset": str(data),
        "txt_sample_by": "line",
        "pack": False,
        "max_length": 8,
        "tokenizer_vocab_size": 262,
        "arch": "bert",
        "hidden_size": 64,
        "num_layers": 2,
        "num_heads": 2,
        "intermediate_size": 128,
        "max_position_embeddings": 16,
        "x0_sampler": x0_spec,
        "scheduler": "cubic",
        "output_dir": str(out),
        "max_steps": 1000,
        "per_device_train_batch_size": 128,
        "learning_rate": 3e-3,
        "lr_scheduler_type": "cosine",
        "warmup_steps": 20,
        "weight_decay": 0.0,
        "logging_steps": 250,
        "save_strategy": "no",
        "use_cpu": True,
        "torch_num_threads": 1,
        "dataloader_num_workers": 0,
        "seed": 0,
        "num_samples": 0,
        "disable_tqdm": True,
    } | overrides
