"""Fixtures: a tiny random model saved locally, a fake engine, and a live in-process server."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path

import pytest
import torch
import uvicorn
from editflow_core import GenerationResult, make_scheduler, make_x0_sampler
from editflow_models import GenerationSetup, load_generation_setup
from editflow_serve import (
    Engine,
    Metrics,
    QueueFull,
    ServeSettings,
    create_app,
)
from editflow_serve.engine import EngineError
from editflow_serve.http_protocol import uvicorn_config
from editflow_testing import make_tiny_tokenizer, save_tiny_model

API_KEY = "test-key"
MODEL_NAME = "tiny-editflow"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("models") / MODEL_NAME)


@pytest.fixture(scope="session")
def tokenizer():
    return make_tiny_tokenizer()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeEngine:
    """An ``EngineClient`` that answers with scripted completions (no model, no thread).

    ``reply(seq)`` gives the completion tokens of a sequence (default: "hello world" + EOS).
    ``delay`` seconds pass before results resolve; ``fail`` makes every request fail with it.
    """

    def __init__(self, tokenizer, max_length: int = 512) -> None:
        tok = tokenizer
        self.setup = GenerationSetup(
            model=None,
            tokenizer=tok,
            scheduler=make_scheduler("cubic"),
            anchor_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            mask_token_id=tok.mask_token_id,
            pad_token_id=tok.pad_token_id,
            vocab_size=len(tok),
            max_length=max_length,
            x0=make_x0_sampler("masks[length:4]"),
            banned_token_ids=[i for i in tok.all_special_ids if i != tok.eos_token_id],
        )
        self.state = "ready"
        self.error: str | None = None
        self.seqs: list = []
        self.cancelled: list[int] = []
        self.delay = 0.0
        self.fail: EngineError | None = None
        self.reply = lambda seq: tok("hello world", add_special_tokens=False)["input_ids"]
        self.queue_full = False
        self.capacity = 10_000
        self.started = self.stopped = False
        self._key = 0

    def submit(self, seqs, on_trace=None):
        if self.state != "ready":
            raise EngineError("not ready")
        if self.queue_full:
            raise QueueFull("full")
        loop = asyncio.get_running_loop()
        out = []
        for i, seq in enumerate(seqs):
            self.seqs.append(seq)
            fut = loop.create_future()
            key, self._key = self._key, self._key + 1
            loop.call_later(self.delay, self._finish, fut, key, i, seq, on_trace)
            out.append((key, fut))
        return out

    def _finish(self, fut, key, i, seq, on_trace) -> None:
        if fut.done():
            return
        if self.fail is not None:
            fut.set_exception(self.fail)
            return
        tokens = list(self.reply(seq))
        fut.set_result(
            GenerationResult(
                key,
                [*seq.prefix, *tokens],
                tokens,
                "stop",
                seq.params.steps,
                seq.params.steps,
                len(tokens),
                1,
                2,
                [] if seq.params.trace else None,
            )
        )

    def cancel(self, keys) -> None:
        self.cancelled.extend(keys)

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.stopped = True


@pytest.fixture
def fake_engine(tokenizer) -> FakeEngine:
    return FakeEngine(tokenizer)


class LiveServer:
    """uvicorn serving the tiny model in a background thread of the test process."""

    def __init__(self, model_dir: Path, api_key: str | None = API_KEY, **engine_kw) -> None:
        self.metrics = Metrics()
        self.engine = Engine(
            lambda: load_generation_setup(model_dir),
            metrics=self.metrics,
            torch_threads=1,
            **engine_kw,
        )
        settings = ServeSettings(
            served_model_name=MODEL_NAME,
            steps=8,
            max_tokens=24,
            keepalive=0.2,
            disconnect_poll=0.05,
            api_key=api_key,
        )
        self.app = create_app(self.engine, settings, metrics=self.metrics)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn_config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 120
        while not (self.server.started and self.engine.state == "ready"):
            assert time.monotonic() < deadline, "server did not start"
            assert self.engine.state != "fault", self.engine.error
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    def client(self, **kw):
        from openai import OpenAI

        return OpenAI(
            base_url=self.url + "/v1", api_key=kw.pop("api_key", API_KEY), max_retries=0, **kw
        )

    def wait_idle(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (
                self.engine.num_running == 0
                and self.engine.num_waiting == 0
                and not self.engine.sampler.has_work
            ):
                return True
            time.sleep(0.02)
        return False


@pytest.fixture(scope="session")
def live(tiny_model_dir):
    torch.set_num_threads(1)
    with LiveServer(tiny_model_dir, max_running=4, max_queued=2) as server:
        yield server
