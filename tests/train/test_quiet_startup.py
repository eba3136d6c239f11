"""Training runs print no warnings from libraries the user did not ask for.

On a CPU with AVX512-BF16, importing bitsandbytes (which transformers -> peft does even when
nothing is quantised) logs "Failed to load CPU gemm_4bit_forward ..."; accelerate imports
deepspeed, which logs "Setting accelerator to CPU ..." on any machine without a GPU; the
Trainer warned that the special tokens of a model built from this very tokenizer "differ"; and
a DataLoader asked to pin memory with no accelerator warns once per loader. The configs below
leave ``use_cpu`` unset, as the sft quickstart does.
"""

from __future__ import annotations

from tests.noise import library_noise

from .conftest import CHAT, run_cli, tiny_pt_config, write_config


def test_pt_then_sft_print_no_library_warnings(tmp_path):
    pt = tiny_pt_config(tmp_path / "pt", max_steps=2, num_samples=1, nll_bound_max_sequences=2)
    del pt["use_cpu"]
    result = run_cli(["pt", "--config", str(write_config(tmp_path / "pt.yaml", pt))])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "held-out likelihood bound" in result.stdout  # it ran to the end
    assert library_noise(result.stdout + result.stderr) == []

    sft = {
        "model_name_or_path": str(tmp_path / "pt" / "checkpoint-final"),
        "dataset": f"{CHAT}[train:8,test:2]",
        "max_length": 200,
        "sft_truncation": "truncate_response",
        "output_dir": str(tmp_path / "sft"),
        "max_steps": 2,
        "per_device_train_batch_size": 4,
        "num_samples": 1,
        "sample_steps": 4,
        "sample_max_new_tokens": 8,
        "torch_num_threads": 1,
        "disable_tqdm": True,
    }
    result = run_cli(["sft", "--config", str(write_config(tmp_path / "sft.yaml", sft))])
    assert result.returncode == 0, result.stderr[-3000:]
    assert library_noise(result.stdout + result.stderr) == []
