"""Graceful SIGTERM: a request in flight completes, then the process exits 0."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import httpx

from tests.noise import library_noise

from .conftest import free_port


def test_sigterm_drains_in_flight_request_then_exits_zero(tiny_model_dir, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "editflow_serve.cli",
            "--model",
            str(tiny_model_dir),
            "--port",
            str(port),
            "--torch-threads",
            "1",
            "--drain-timeout",
            "60",
            "--log-level",
            "warning",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 150
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "server did not come up"
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        result: dict = {}

        def request():
            body = {"messages": [{"role": "user", "content": "Hi"}], "steps": 400, "max_tokens": 16}
            result["r"] = httpx.post(url + "/v1/chat/completions", json=body, timeout=120)

        t = threading.Thread(target=request)
        t.start()
        while "editflow_running_sequences 1.0" not in httpx.get(url + "/metrics").text:
            assert t.is_alive(), "request finished before SIGTERM"
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        t.join(120)
        r = result["r"]
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["usage"]["editflow"]["steps"] == 400  # it ran to the end, not cut short
        assert proc.wait(60) == 0
        log.flush()
        assert library_noise((tmp_path / "server.log").read_text()) == []  # a quiet start-up
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
