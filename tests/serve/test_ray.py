"""Replicas on Ray Serve: `editflow-serve --replicas 2` on the CPU, loopback only (slow: Ray's
start-up takes about half a minute)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from .conftest import API_KEY, free_port

pytest.importorskip("ray.serve", reason="needs the ray extra (uv sync --extra ray)")

pytestmark = pytest.mark.slow


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def replicas(server: subprocess.Popen) -> list[int]:
    """The pids of the server's Ray Serve replica processes."""
    out = []
    for pid in descendants(server.pid):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if cmd.startswith(b"ray::ServeReplica:editflow"):
            out.append(pid)
    return sorted(out)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture(scope="module")
def ray_server(tiny_model_dir):
    port = free_port()
    cmd = [
        *(sys.executable, "-m", "editflow_serve.cli", "--model", str(tiny_model_dir)),
        *("--host", "127.0.0.1", "--port", str(port), "--api-key", API_KEY),
        *("--replicas", "2", "--torch-threads", "1", "--replica-cpus", "0.5"),
        *("--max-running", "4", "--max-queued", "16", "--steps", "8", "--max-tokens", "16"),
    ]
    env = {**os.environ, "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    try:
        while True:
            assert proc.poll() is None, "the Ray server exited during start-up"
            assert time.monotonic() < deadline, "the Ray server did not become healthy"
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        while len(replicas(proc)) < 2:
            assert time.monotonic() < deadline, "fewer than 2 replicas"
            time.sleep(0.5)
        yield proc, url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def chat(url: str, i: int, steps: int = 8) -> httpx.Response:
    body = {"messages": [{"role": "user", "content": f"hi {i}"}], "seed": i, "steps": steps}
    headers = {"Authorization": f"Bearer {API_KEY}"}
    return httpx.post(url + "/v1/chat/completions", json=body, headers=headers, timeout=120)


def test_requests_spread_over_both_replicas(ray_server):
    proc, url = ray_server
    pids = replicas(proc)
    before = {p: cpu_seconds(p) for p in pids}
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda i: chat(url, i, steps=32), range(48)))
    assert [r.status_code for r in answers] == [200] * 48
    assert all(r.json()["choices"][0]["message"]["refusal"] is None for r in answers)
    used = {p: cpu_seconds(p) - before[p] for p in pids}
    # both engines did model work (idle replicas spend well under a tenth of a second)
    assert min(used.values()) > 0.3, used
    # the API is the single-process one: errors keep the OpenAI envelope
    r = httpx.post(url + "/v1/chat/completions", json={"messages": []}, timeout=30)
    assert r.status_code == 401 and set(r.json()["error"]) == {"message", "type", "param", "code"}


def test_a_killed_replica_is_replaced_and_others_go_on(ray_server):
    proc, url = ray_server
    victim, survivor = replicas(proc)
    with ThreadPoolExecutor(12) as pool:
        futures = [pool.submit(chat, url, i, 400) for i in range(12)]
        time.sleep(1.0)  # all accepted, some running on the victim
        os.kill(victim, signal.SIGKILL)
        answers = [f.result() for f in futures]
    codes = [r.status_code for r in answers]
    # the requests running on the killed replica (at most --max-running: 4) fail with a clean
    # HTTP 500; the others, running elsewhere or waiting in Ray's queue, all finish
    assert set(codes) <= {200, 500}, codes
    assert 1 <= codes.count(500) <= 4, codes
    deadline = time.monotonic() + 120
    while True:
        now = replicas(proc)
        if len(now) == 2 and victim not in now:
            break
        assert time.monotonic() < deadline, f"not replaced: {now}"
        time.sleep(0.5)
    assert survivor in now
    with ThreadPoolExecutor(8) as pool:
        after = list(pool.map(lambda i: chat(url, i), range(8)))
    assert [r.status_code for r in after] == [200] * 8
