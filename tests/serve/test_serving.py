"""Serving logic against a fake engine: prompts, seeds, stop strings, usage, errors, SSE format."""

from __future__ import annotations

import json
import logging

import pytest
from editflow_models.prompting import prefix_ids, render_chat
from editflow_serve import ServeSettings, create_app
from editflow_serve.engine import EngineError
from fastapi.testclient import TestClient

CHAT = "/v1/chat/completions"
MSG = [{"role": "user", "content": "Hi"}]


def client(engine, **kw) -> TestClient:
    return TestClient(create_app(engine, ServeSettings(served_model_name="m", **kw)))


def sse(text: str) -> list:
    """Data payloads of an SSE body (JSON-decoded, '[DONE]' kept as a string)."""
    out = []
    for block in text.split("\n\n"):
        if block.startswith("data: "):
            data = block[len("data: ") :]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def test_chat_prompt_is_the_shared_prefix(fake_engine, tokenizer):
    msgs = [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
    ]
    r = client(fake_engine).post(CHAT, json={"messages": msgs})
    assert r.status_code == 200
    expected = render_chat(
        tokenizer, [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "a\nb"}]
    )
    assert fake_engine.seqs[0].prefix == prefix_ids(tokenizer.bos_token_id, tokenizer, expected)
    usage = r.json()["usage"]
    assert usage["prompt_tokens"] == len(fake_engine.seqs[0].prefix)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_completion_prompts_text_and_token_ids(fake_engine, tokenizer):
    c = client(fake_engine)
    r = c.post("/v1/completions", json={"prompt": ["ab", "cd"], "n": 2})
    assert r.status_code == 200
    assert [ch["index"] for ch in r.json()["choices"]] == [0, 1, 2, 3]
    assert fake_engine.seqs[0].prefix == prefix_ids(tokenizer.bos_token_id, tokenizer, "ab")
    assert fake_engine.seqs[2].prefix == prefix_ids(tokenizer.bos_token_id, tokenizer, "cd")
    r = c.post("/v1/completions", json={"prompt": [5, 6, 7]})
    assert r.status_code == 200 and fake_engine.seqs[-1].prefix == [tokenizer.bos_token_id, 5, 6, 7]
    r = c.post("/v1/completions", json={"prompt": [5, 10**6]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "prompt"


def test_n_gets_distinct_derived_seeds_and_a_seed_fixes_them(fake_engine):
    c = client(fake_engine)
    c.post(CHAT, json={"messages": MSG, "n": 3, "seed": 7})
    c.post(CHAT, json={"messages": MSG, "n": 3, "seed": 7})
    seeds = [s.params.seed for s in fake_engine.seqs]
    assert seeds[:3] == seeds[3:] and len(set(seeds[:3])) == 3 and seeds[0] == 7


def test_request_settings_reach_the_sampler(fake_engine):
    body = {
        "messages": MSG,
        "steps": 5,
        "top_k": 3,
        "temperature": 0.5,
        "top_p": 0.9,
        "max_completion_tokens": 6,
        "mask_length": 10,
        "idle_stop_steps": 2,
        "guidance_scale": 1.5,
    }
    assert client(fake_engine).post(CHAT, json=body).status_code == 200
    p, seq = fake_engine.seqs[0].params, fake_engine.seqs[0]
    assert (p.steps, p.top_k, p.temperature, p.top_p, p.idle_stop_steps) == (5, 3, 0.5, 0.9, 2)
    assert p.guidance_scale == 1.5
    assert p.max_new_tokens == 6
    assert seq.x0 == [fake_engine.setup.mask_token_id] * 6  # 10 masks cut to the token budget


def test_stop_strings_cut_and_finish_stop(fake_engine):
    r = client(fake_engine).post(CHAT, json={"messages": MSG, "stop": ["zz", "o w"]})
    choice = r.json()["choices"][0]
    assert choice["message"]["content"] == "hell" and choice["finish_reason"] == "stop"


def test_usage_sums_edit_statistics_over_choices(fake_engine):
    r = client(fake_engine).post(CHAT, json={"messages": MSG, "n": 2, "steps": 4})
    k = len(fake_engine.reply(None))  # the fake reports n_ins = k, n_del = 1, n_sub = 2
    assert r.json()["usage"]["editflow"] == {
        "steps": 8,
        "forward_passes": 8,
        "insertions": 2 * k,
        "deletions": 2,
        "substitutions": 4,
    }
    assert r.json()["usage"]["completion_tokens"] == 2 * k


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": MSG, "temperature": 2.5}, "temperature"),
        ({"messages": MSG, "top_p": -1}, "top_p"),
        ({"messages": MSG, "n": 0}, "n"),
        ({"messages": MSG, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"messages": MSG, "stream_options": {"include_usage": True}}, "stream_options"),
        ({"messages": MSG, "logprobs": True}, "logprobs"),
        ({"messages": MSG, "response_format": {"type": "json_object"}}, "response_format"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages[0].content[0].type",
        ),
        ({"messages": []}, "messages"),
        ({}, "messages"),
        ({"messages": MSG, "x0": "bogus[1]"}, "x0"),
        ({"messages": MSG, "steps": 10**9}, "steps"),
        ({"messages": MSG, "max_tokens": 10**30}, "max_tokens"),
        ({"messages": MSG, "seed": "abc"}, "seed"),
    ],
)
def test_bad_requests_are_400_with_param(fake_engine, body, param):
    r = client(fake_engine).post(CHAT, json=body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and err["param"] == param


def test_bad_json_body_types_and_size(fake_engine):
    c = client(fake_engine, max_body_bytes=1000)
    for content in (b"{bad", b"[1, 2]", b"\xff\xfe\x00", b"null", b'"x"'):
        r = c.post(CHAT, content=content)
        assert r.status_code == 400 and "error" in r.json(), content
    r = c.post(CHAT, content=b"x" * 5000)
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"


def test_unknown_fields_ignored_and_logged_once(fake_engine, caplog):
    c = client(fake_engine)
    with caplog.at_level(logging.WARNING, logger="editflow_serve"):
        for _ in range(3):
            assert c.post(CHAT, json={"messages": MSG, "frobnicate": 1}).status_code == 200
    assert sum("frobnicate" in rec.message for rec in caplog.records) == 1


def test_unknown_model_route_and_method(fake_engine):
    c = client(fake_engine)
    r = c.post(CHAT, json={"messages": MSG, "model": "other"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    assert c.get("/v1/models/other").json()["error"]["code"] == "model_not_found"
    assert c.get("/v1/models/m").json()["id"] == "m"
    assert c.get("/v1/nothing").status_code == 404
    assert c.get(CHAT).status_code == 405


def test_api_key_and_open_health_metrics(fake_engine):
    c = client(fake_engine, api_key="k")
    assert c.post(CHAT, json={"messages": MSG}).status_code == 401
    r = c.post(CHAT, json={"messages": MSG}, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    assert (
        c.post(CHAT, json={"messages": MSG}, headers={"Authorization": "Bearer k"}).status_code
        == 200
    )
    assert c.get("/health").status_code == 200
    assert c.get("/metrics").status_code == 200


def test_cors_preflight_allows_sdk_headers(fake_engine):
    r = client(fake_engine).options(
        CHAT,
        headers={
            "Origin": "http://example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,x-stainless-os,content-type",
        },
    )
    assert r.status_code == 200
    allowed = r.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "x-stainless-os" in allowed


def test_engine_states_map_to_status_codes(fake_engine):
    c = client(fake_engine)
    fake_engine.queue_full = True
    r = c.post(CHAT, json={"messages": MSG})
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    fake_engine.queue_full = False
    fake_engine.fail = EngineError("boom", status=500)
    r = c.post(CHAT, json={"messages": MSG})
    assert r.status_code == 500 and r.json()["error"]["type"] == "server_error"
    fake_engine.fail = None
    for state in ("loading", "draining", "fault"):
        fake_engine.state = state
        assert c.get("/health").status_code == 503
        r = c.post(CHAT, json={"messages": MSG})
        assert r.status_code == 503 and "retry-after" in r.headers


def test_stream_chunks_follow_the_contract(fake_engine):
    body = {"messages": MSG, "n": 2, "stream": True, "stream_options": {"include_usage": True}}
    r = client(fake_engine).post(CHAT, json=body)
    assert r.headers["content-type"].startswith("text/event-stream")
    assert "event:" not in r.text
    events = sse(r.text)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert len({c["id"] for c in chunks}) == 1 and len({c["created"] for c in chunks}) == 1
    for i in range(2):
        mine = [c["choices"][0] for c in chunks if c["choices"] and c["choices"][0]["index"] == i]
        assert mine[0]["delta"]["role"] == "assistant"
        assert sum(ch["finish_reason"] is not None for ch in mine) == 1
        assert "".join(ch["delta"].get("content") or "" for ch in mine) == "hello world"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


def test_stream_sends_keepalive_while_waiting(fake_engine):
    fake_engine.delay = 0.3
    r = client(fake_engine, keepalive=0.05).post(CHAT, json={"messages": MSG, "stream": True})
    assert ": keep-alive\n\n" in r.text
    assert sse(r.text)[-1] == "[DONE]"


def test_error_after_stream_start_is_a_data_error_then_done(fake_engine):
    fake_engine.fail = EngineError("boom", status=500)
    r = client(fake_engine).post(CHAT, json={"messages": MSG, "stream": True})
    events = sse(r.text)
    assert events[-1] == "[DONE]"
    assert events[-2]["error"]["type"] == "server_error"


def test_trace_snapshot_is_x0(fake_engine):
    r = client(fake_engine).post(CHAT, json={"messages": MSG, "trace": True, "mask_length": 3})
    trace = r.json()["choices"][0]["editflow_trace"]
    mask = fake_engine.setup.mask_token_id
    assert trace[0]["step"] == -1 and trace[0]["tokens"] == [mask] * 3


@pytest.mark.parametrize("bad", [-0.5, 1000, "big"])
def test_a_bad_guidance_scale_is_400_naming_it(fake_engine, bad):
    body = {"messages": MSG, "guidance_scale": bad}
    r = client(fake_engine).post(CHAT, json=body)
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "guidance_scale"


def test_guidance_defaults_to_off(fake_engine):
    assert client(fake_engine).post(CHAT, json={"messages": MSG}).status_code == 200
    assert fake_engine.seqs[0].params.guidance_scale == 0.0
