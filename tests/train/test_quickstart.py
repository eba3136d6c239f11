"""The README's quickstart, as a user runs it: within 5 minutes, with Shakespeare-like words.

Slow (about 4-5 minutes on 2 cores): ``uv run pytest tests/train -m slow -k quickstart``.
"""

from __future__ import annotations

import json
import time

import pytest

from .conftest import REPO, run_cli


@pytest.mark.slow
def test_quickstart_pt_then_sft(tmp_path):
    out = tmp_path / "quickstart"
    start = time.perf_counter()
    result = run_cli(
        ["pt", "--config", "configs/pt/quickstart.yaml", "--output_dir", str(out)], timeout=420
    )
    wall = time.perf_counter() - start
    assert result.returncode == 0, result.stderr[-3000:]
    assert wall < 300, f"quickstart took {wall:.0f} s"
    summary = json.loads((out / "summary.json").read_text())
    assert "real-word fraction" in result.stdout
    assert summary["real_word_fraction"] >= 0.6, summary
    assert summary["train_loss"] < 9.0
    assert (out / "checkpoint-final" / "COMPLETE").is_file()

    sft_out = tmp_path / "quickstart-sft"
    result = run_cli(
        [
            "sft",
            "--config",
            str(REPO / "configs/sft/quickstart.yaml"),
            "--model_name_or_path",
            str(out / "checkpoint-final"),
            "--output_dir",
            str(sft_out),
            "--max_train_seconds",
            "60",
        ],
        timeout=420,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(json.loads((sft_out / "summary.json").read_text())["samples"]) == 3
