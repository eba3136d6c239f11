"""`editflow generate` prints no warnings from libraries the user did not ask for (see
tests/train/test_quiet_startup.py for which ones, and why they appeared)."""

from __future__ import annotations

import subprocess
import sys

from tests.noise import library_noise


def test_generate_prints_no_library_warnings(tiny_checkpoint):
    result = subprocess.run(
        [sys.executable, "-m", "editflow_cli.main", "generate", "--model", str(tiny_checkpoint),
         "--prompt", "The", "--steps", "4", "--seed", "0"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert library_noise(result.stdout + result.stderr) == []
