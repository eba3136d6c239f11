"""scripts/gpu_check.sh --smoke: the GPU check's code runs end to end on the CPU, every section
reports, and the report is well formed (no timings judged)."""

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_smoke_runs_every_section(tmp_path):
    res = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--smoke", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    sections = report["sections"]
    assert list(sections) == ["train", "zero2", "sampler", "server"]
    assert {(r["model"], r["batches"]) for r in sections["train"]} == {
        (m, b) for m in ("ModernBERT", "Qwen3-style (a2d)") for b in ("padded", "ragged")
    }
    assert all(r["tokens_per_s"] > 0 for r in sections["train"])
    assert sections["zero2"][0]["zero_stage"] == 2 and sections["zero2"][0]["steps"] > 0
    assert [r["batch"] for r in sections["sampler"]] == [1, 16, 64]
    assert [r["conc"] for r in sections["server"]] == [1, 16, 64]
    assert all(r["failures"] == 0 for r in sections["server"])
    text = (tmp_path / "report.md").read_text()
    assert "## train" in text and "| ModernBERT |" in text and "## server" in text
