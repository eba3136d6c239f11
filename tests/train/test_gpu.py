"""The 1-GPU recipe (configs/pt/modernbert-large-shakespeare.yaml) for a few steps on a GPU.

Opt in with ``-m gpu``. Machines without network cannot fetch ModernBERT-large: unless it is in
the local HF cache, the same recipe runs on a from-scratch model of ModernBERT-large's shape.
"""

from __future__ import annotations

import json

import pytest
import torch

from .conftest import REPO, run_cli


def _cached(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_modernbert_large_recipe_on_one_gpu(tmp_path):
    out = tmp_path / "mb-large"
    model = (
        []
        if _cached("answerdotai/ModernBERT-large")
        else [
            "--model_name_or_path",
            "",
            "--hidden_size",
            "1024",
            "--num_layers",
            "28",
            "--num_heads",
            "16",
            "--intermediate_size",
            "2624",
            "--tokenizer_vocab_size",
            "4096",
        ]
    )
    result = run_cli(
        [
            "pt",
            "--config",
            str(REPO / "configs/pt/modernbert-large-shakespeare.yaml"),
            *model,
            "--output_dir",
            str(out),
            "--max_steps",
            "30",
            "--eval_steps",
            "30",
            "--save_steps",
            "30",
            "--report_to",
            "none",
            "--num_samples",
            "2",
            "--sample_steps",
            "32",
        ],
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["global_step"] == 30 and summary["train_loss"] < 50
    assert (out / "checkpoint-30" / "COMPLETE").is_file()
    assert (out / "checkpoint-final" / "COMPLETE").is_file()
