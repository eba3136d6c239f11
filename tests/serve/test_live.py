"""The official openai client against a live uvicorn serving the tiny model."""

from __future__ import annotations

import json
import socket
import threading
import time
from urllib.parse import urlsplit

import httpx
import openai
import pytest

from .conftest import API_KEY, MODEL_NAME

MSG = [{"role": "user", "content": "Hello there"}]


def joined_stream(stream) -> tuple[dict[int, str], dict[int, list[str]], list]:
    """(text per choice, finish reasons per choice, all chunks)."""
    texts: dict[int, str] = {}
    reasons: dict[int, list[str]] = {}
    chunks = list(stream)
    for ch in chunks:
        for c in ch.choices:
            piece = c.delta.content if hasattr(c, "delta") else c.text
            texts[c.index] = texts.get(c.index, "") + (piece or "")
            if c.finish_reason is not None:
                reasons.setdefault(c.index, []).append(c.finish_reason)
    return texts, reasons, chunks


def test_models(live):
    c = live.client()
    assert [m.id for m in c.models.list().data] == [MODEL_NAME]
    assert c.models.retrieve(MODEL_NAME).id == MODEL_NAME
    with pytest.raises(openai.NotFoundError) as err:
        c.models.retrieve("missing")
    assert err.value.code == "model_not_found"


def test_chat_answer_usage_and_editflow_stats(live):
    r = live.client().chat.completions.create(model=MODEL_NAME, messages=MSG, seed=3, max_tokens=16)
    choice = r.choices[0]
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-")
    assert choice.message.role == "assistant" and isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert 0 <= r.usage.completion_tokens <= 16
    ef = r.usage.model_extra["editflow"]
    assert ef["steps"] == 8 and ef["forward_passes"] >= 1
    assert ef["insertions"] > 0  # x0 is 8 masks and the rate head fires often


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_stream_joined_equals_non_stream(live, endpoint):
    c = live.client()
    kw = dict(model=MODEL_NAME, seed=11, n=2, max_tokens=20, extra_body={"steps": 6})
    if endpoint == "chat":
        create = c.chat.completions.create
        kw["messages"] = MSG
        full = create(**kw)
        expected = {ch.index: ch.message.content for ch in full.choices}
    else:
        create = c.completions.create
        kw["prompt"] = "The quick"
        full = create(**kw)
        expected = {ch.index: ch.text for ch in full.choices}
    texts, reasons, chunks = joined_stream(
        create(**kw, stream=True, stream_options={"include_usage": True})
    )
    assert texts == expected
    assert {i: len(r) for i, r in reasons.items()} == {0: 1, 1: 1}
    assert {i: r[0] for i, r in reasons.items()} == {
        ch.index: ch.finish_reason for ch in full.choices
    }
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == full.usage.total_tokens
    assert len({ch.id for ch in chunks}) == 1
    if endpoint == "chat":
        firsts = {}
        for ch in chunks:
            for choice in ch.choices:
                firsts.setdefault(choice.index, choice.delta.role)
        assert firsts == {0: "assistant", 1: "assistant"}


def test_n_choices_differ_and_seed_repeats(live):
    c = live.client()
    a = c.chat.completions.create(model=MODEL_NAME, messages=MSG, n=3, seed=5, max_tokens=16)
    b = c.chat.completions.create(model=MODEL_NAME, messages=MSG, n=3, seed=5, max_tokens=16)
    texts = [ch.message.content for ch in a.choices]
    assert [ch.index for ch in a.choices] == [0, 1, 2]
    assert texts == [ch.message.content for ch in b.choices]
    assert len(set(texts)) > 1


def test_stop_string_cuts_text(live):
    c = live.client()
    kw = dict(model=MODEL_NAME, prompt="Edit", seed=21, max_tokens=24, temperature=0.8)
    for seed in range(21, 40):
        kw["seed"] = seed
        text = c.completions.create(**kw).choices[0].text
        if len(text) >= 6:
            break
    k = len(text) // 2
    stop = text[k : k + 2]
    r = c.completions.create(**kw, stop=[stop, "\x00never"]).choices[0]
    assert r.text == text[: text.index(stop)] and r.finish_reason == "stop"


def test_max_tokens_caps_length(live):
    r = live.client().completions.create(model=MODEL_NAME, prompt="A", max_tokens=2, seed=1)
    assert r.usage.completion_tokens <= 2


def test_error_statuses(live):
    c = live.client()
    with pytest.raises(openai.AuthenticationError):
        live.client(api_key="wrong").chat.completions.create(model=MODEL_NAME, messages=MSG)
    with pytest.raises(openai.BadRequestError) as err:
        c.chat.completions.create(model=MODEL_NAME, messages=MSG, temperature=5)
    assert err.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError):
        c.chat.completions.create(
            model=MODEL_NAME, messages=MSG, stream_options={"include_usage": True}
        )
    with pytest.raises(openai.NotFoundError):
        c.chat.completions.create(model="gpt-nothing", messages=MSG)
    # unknown fields are ignored, not 422
    r = c.chat.completions.create(
        model=MODEL_NAME, messages=MSG, extra_body={"foo": {"bar": 1}}, max_tokens=4
    )
    assert r.choices[0].finish_reason in ("stop", "length")
    raw = httpx.post(
        live.url + "/v1/chat/completions",
        content=b"x" * (10 << 20),
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=30,
    )
    assert raw.status_code == 413 and raw.json()["error"]["code"] == "request_too_large"


def test_health_and_metrics_open_with_a_key(live):
    assert httpx.get(live.url + "/health").json() == {"status": "ok"}
    live.client().completions.create(model=MODEL_NAME, prompt="x", max_tokens=4)
    text = httpx.get(live.url + "/metrics").text
    assert 'editflow_requests_total{endpoint="/v1/completions",status="200"}' in text
    for name in (
        "editflow_queue_depth",
        "editflow_running_sequences",
        "editflow_steps_total",
        "editflow_edits_per_step_bucket",
        "editflow_request_latency_seconds_bucket",
    ):
        assert name in text
    steps = float(
        next(x for x in text.splitlines() if x.startswith("editflow_steps_total")).split()[1]
    )
    assert steps > 0


def apply_trace(trace: list[dict]) -> list[int]:
    """Replay the streamed edit operations on the x0 snapshot; returns the final tokens."""
    tokens = list(trace[0]["tokens"])
    for step in trace[1:]:
        for e in reversed(step["edits"]):  # right to left: earlier positions stay valid
            if e["op"] == "ins":
                tokens.insert(e["pos"] + 1, e["token"])
            elif e["op"] == "del":
                assert tokens[e["pos"]] == e["old"]
                del tokens[e["pos"]]
            else:
                assert tokens[e["pos"]] == e["old"]
                tokens[e["pos"]] = e["token"]
    return tokens


def test_trace_side_channel_replays_to_the_answer(live, tokenizer):
    c = live.client()
    kw = dict(model=MODEL_NAME, messages=MSG, seed=8, max_tokens=20, extra_body={"trace": True})
    full = c.chat.completions.create(**kw).choices[0]
    texts, _, chunks = joined_stream(c.chat.completions.create(**kw, stream=True))
    assert texts[0] == full.message.content
    trace = [
        s
        for ch in chunks
        for choice in ch.choices
        for s in (choice.model_extra.get("editflow_trace") or [])
    ]
    assert trace == full.model_extra["editflow_trace"]
    assert len(trace) > 2 and all(
        ch.choices[0].delta.content is None
        for ch in chunks
        if ch.choices and ch.choices[0].model_extra.get("editflow_trace")
    )
    tokens = apply_trace(trace)
    if tokenizer.eos_token_id in tokens:
        tokens = tokens[: tokens.index(tokenizer.eos_token_id)]
    assert tokenizer.decode(tokens, skip_special_tokens=True) == full.message.content


def test_queue_full_429_and_disconnect_frees_slots(live):
    """Fill 4 running + 2 queued slots with long streams, get a 429, then hang up on all."""
    assert live.wait_idle()
    body = {"model": MODEL_NAME, "messages": MSG, "stream": True, "steps": 4000, "max_tokens": 24}
    headers = {"Authorization": f"Bearer {API_KEY}"}
    clients = [httpx.Client(timeout=30) for _ in range(6)]
    streams = []
    try:
        for cl in clients:
            cm = cl.stream("POST", live.url + "/v1/chat/completions", json=body, headers=headers)
            resp = cm.__enter__()
            assert resp.status_code == 200
            lines = resp.iter_lines()  # keep it referenced: closing it hangs up
            next(lines)  # the role chunk: the request is in the engine
            streams.append((cm, lines))
        deadline = time.monotonic() + 10
        while live.engine.num_running < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert (live.engine.num_running, live.engine.num_waiting, live.engine.state) == (
            4,
            2,
            "ready",
        )
        with pytest.raises(openai.RateLimitError) as err:
            live.client().chat.completions.create(model=MODEL_NAME, messages=MSG)
        assert err.value.response.headers["retry-after"] == "1"
        steps_before = live.engine.sampler.forward_passes
    finally:
        for cm, _ in streams:
            cm.__exit__(None, None, None)
        for cl in clients:
            cl.close()
    assert live.wait_idle(timeout=10)
    # the 4000-step requests were dropped, not run to completion
    assert live.engine.sampler.forward_passes - steps_before < 3000


@pytest.mark.parametrize("stream", [True, False])
def test_hang_up_right_after_sending_cancels(live, stream):
    """A client that closes its socket before reading a byte frees its slot too."""
    assert live.wait_idle()
    body = json.dumps(
        {"model": MODEL_NAME, "messages": MSG, "stream": stream, "steps": 4000}
    ).encode()
    url = urlsplit(live.url)
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Authorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    steps_before = live.engine.sampler.forward_passes
    for _ in range(5):  # hang up at once, and once the request is running
        with socket.create_connection((url.hostname, url.port)) as sock:
            sock.sendall(head + body)
        with socket.create_connection((url.hostname, url.port)) as sock:
            sock.sendall(head + body)
            deadline = time.monotonic() + 10
            while live.engine.num_running + live.engine.num_waiting == 0:
                assert time.monotonic() < deadline, "the request never reached the engine"
                time.sleep(0.005)
    time.sleep(0.5)
    assert live.wait_idle(timeout=10)
    assert live.engine.sampler.forward_passes - steps_before < 3000


def test_non_stream_disconnect_cancels(live):
    assert live.wait_idle()
    body = {"model": MODEL_NAME, "messages": MSG, "steps": 4000}

    def hang_up():
        try:
            httpx.post(
                live.url + "/v1/chat/completions",
                json=body,
                headers={"Authorization": f"Bearer {API_KEY}"},
                timeout=0.5,
            )
        except httpx.TimeoutException:
            pass

    t = threading.Thread(target=hang_up)
    t.start()
    t.join()
    assert live.wait_idle(timeout=10)
    assert live.engine.num_running == 0
