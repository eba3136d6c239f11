"""A tiny random checkpoint and, on demand, a live editflow-serve for the CLI tests."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    from editflow_testing import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("ckpt") / "tiny-editflow")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(tiny_checkpoint):
    """(base_url, api_key) of an editflow-serve subprocess serving the tiny checkpoint."""
    port, key = free_port(), "sekrit"
    cmd = [
        sys.executable,
        "-m",
        "editflow_serve.cli",
        "--model",
        str(tiny_checkpoint),
        "--port",
        str(port),
        "--api-key",
        key,
        "--steps",
        "8",
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy()
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode()) from None
            time.sleep(0.5)
    else:
        proc.kill()
        raise RuntimeError("editflow-serve did not become healthy in 120 s")
    yield f"http://127.0.0.1:{port}/v1", key
    proc.terminate()
    proc.wait(30)
