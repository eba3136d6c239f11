"""Issue 15's conformance findings, one test (or a few) per item; each failed before its fix."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from urllib.parse import urlsplit

import editflow_serve.serving as serving_module
import httpx
import openai
import pytest
from editflow_models.prompting import prefix_ids, render_chat
from editflow_serve import ServeSettings, create_app
from fastapi.testclient import TestClient

from .conftest import API_KEY, MODEL_NAME
from .openai_schema import schema_errors

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
MSG = [{"role": "user", "content": "Hi"}]


def client(engine, **kw) -> TestClient:
    return TestClient(create_app(engine, ServeSettings(served_model_name="m", **kw)))


def error(r: httpx.Response) -> dict:
    assert r.headers["content-type"].startswith("application/json"), r.text
    return r.json()["error"]


# ---------------------------------------------------------------- 1. x0 length is bounded
@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"mask_length": 10**6}, "mask_length"),
        ({"x0": "masks[length:1000000]"}, "x0"),
        ({"x0": "uniform[length:1-900000]"}, "x0"),
        ({"x0": "masks[mean:1e6]"}, "x0"),
    ],
)
def test_x0_longer_than_the_context_is_400_naming_the_field_and_limit(fake_engine, extra, param):
    r = client(fake_engine).post(CHAT, json={"messages": MSG, **extra})
    assert r.status_code == 400, r.text
    err = error(r)
    tok = fake_engine.setup.tokenizer
    room = fake_engine.setup.max_length - len(
        prefix_ids(tok.bos_token_id, tok, render_chat(tok, MSG))
    )
    assert err["param"] == param and str(room) in err["message"], err
    assert fake_engine.seqs == []  # nothing was built or submitted


def test_x0_within_the_context_is_still_cut_to_the_token_budget(fake_engine):
    body = {"messages": MSG, "mask_length": 400, "max_tokens": 5}
    assert client(fake_engine).post(CHAT, json=body).status_code == 200
    assert fake_engine.seqs[0].x0 == [fake_engine.setup.mask_token_id] * 5


def test_prompt_encoding_and_x0_run_off_the_event_loop(fake_engine, monkeypatch):
    """Work that grows with the request (tokenising, drawing x0) never blocks other clients."""
    on_loop: list[bool] = []

    def spy(wrapped):
        def call(*args, **kw):
            try:
                asyncio.get_running_loop()
                on_loop.append(True)
            except RuntimeError:
                on_loop.append(False)
            return wrapped(*args, **kw)

        return call

    monkeypatch.setattr(serving_module, "prefix_ids", spy(serving_module.prefix_ids))
    monkeypatch.setattr(serving_module, "make_x0_sampler", spy(serving_module.make_x0_sampler))
    c = client(fake_engine)
    assert c.post(CHAT, json={"messages": MSG}).status_code == 200
    assert c.post(COMPLETIONS, json={"prompt": "ab"}).status_code == 200
    assert on_loop and not any(on_loop), on_loop


# ---------------------------------------------------------------- 2. lone surrogates
@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (CHAT, {"messages": [{"role": "user", "content": "a\ud800b"}]}, "messages[0].content"),
        (
            CHAT,
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "\udfff"}]}]},
            "messages[0].content[0].text",
        ),
        (COMPLETIONS, {"prompt": "a\ud800b"}, "prompt"),
        (COMPLETIONS, {"prompt": ["ok", "x\udc00"]}, "prompt[1]"),
    ],
)
def test_lone_surrogate_is_400(fake_engine, path, body, param):
    r = client(fake_engine).post(path, content=json.dumps(body))  # json.dumps keeps \ud800
    assert r.status_code == 400, r.text
    err = error(r)
    assert err["param"] == param and "surrogate" in err["message"]


# ---------------------------------------------------------------- 3. null means the default
@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            CHAT,
            {
                "messages": MSG,
                "stream": None,
                "n": None,
                "stream_options": None,
                "temperature": None,
                "trace": None,
                "logprobs": None,
                "top_logprobs": None,
                "presence_penalty": None,
                "logit_bias": None,
                "response_format": None,
            },
        ),
        (CHAT, {"messages": MSG, "stream": True, "stream_options": {"include_usage": None}}),
        (COMPLETIONS, {"prompt": "ab", "echo": None, "n": None, "stream": None, "suffix": None}),
        (COMPLETIONS, {"prompt": None}),
    ],
)
def test_explicit_null_means_the_default(fake_engine, path, body):
    r = client(fake_engine).post(path, json=body)
    assert r.status_code == 200, r.text
    if not body.get("stream"):
        assert len(r.json()["choices"]) == 1
    assert len(fake_engine.seqs) == 1


def test_null_prompt_is_the_empty_prompt(fake_engine, tokenizer):
    assert client(fake_engine).post(COMPLETIONS, json={"prompt": None}).status_code == 200
    assert fake_engine.seqs[0].prefix == [tokenizer.bos_token_id]


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (COMPLETIONS, {"prompt": "a", "echo": 0}, "echo"),
        (CHAT, {"messages": MSG, "stream": "true"}, "stream"),
        (CHAT, {"messages": MSG, "n": "2"}, "n"),
        (CHAT, {"messages": MSG, "n": 1.5}, "n"),
        (CHAT, {"messages": MSG, "trace": 1}, "trace"),
    ],
)
def test_booleans_and_integers_are_not_coerced(fake_engine, path, body, param):
    r = client(fake_engine).post(path, json=body)
    assert r.status_code == 400, r.text
    assert error(r)["param"] == param


# ---------------------------------------------------------------- 4. bounded unknown-field log
def test_unknown_field_logging_is_bounded(fake_engine, caplog):
    c = client(fake_engine)
    with caplog.at_level(logging.WARNING, logger="editflow_serve"):
        for i in range(5):
            body = {"messages": MSG, **{f"k{i}_{j}" + "x" * 200: 1 for j in range(2000)}}
            assert c.post(CHAT, json=body).status_code == 200
    lines = [rec.getMessage() for rec in caplog.records if "unknown" in rec.getMessage()]
    assert 1 <= len(lines) <= 6, len(lines)
    assert all(len(line) < 1000 for line in lines)
    remembered = c.app.state.serving._logged_unknown
    assert len(remembered) <= serving_module.MAX_LOGGED_UNKNOWN < 10_000


# ---------------------------------------------------------------- 5. can never fit: 400
def test_request_larger_than_the_engine_is_400_not_429(live):
    """max_running 4 + max_queued 2: n = 8 can never be admitted, even on an idle server."""
    assert live.wait_idle()
    c = live.client()
    with pytest.raises(openai.BadRequestError) as err:
        c.chat.completions.create(model=MODEL_NAME, messages=MSG, n=8, max_tokens=4)
    assert err.value.body["param"] == "n" and "6" in err.value.body["message"]
    with pytest.raises(openai.BadRequestError) as err:
        c.completions.create(model=MODEL_NAME, prompt=["a", "b", "c", "d"], n=2, max_tokens=4)
    assert err.value.body["param"] == "n"
    r = c.chat.completions.create(model=MODEL_NAME, messages=MSG, n=6, max_tokens=4)
    assert len(r.choices) == 6  # the largest request that fits


# ---------------------------------------------------------------- 6. refusal: null
def test_chat_message_carries_refusal_null_and_matches_openai_schema(fake_engine):
    c = client(fake_engine)
    body = c.post(CHAT, json={"messages": MSG, "n": 2}).json()
    assert all(ch["message"]["refusal"] is None for ch in body["choices"])
    assert schema_errors("CreateChatCompletionResponse", body) == []
    text = c.post(COMPLETIONS, json={"prompt": "ab"}).json()
    assert schema_errors("CreateCompletionResponse", text) == []
    assert schema_errors("ListModelsResponse", c.get("/v1/models").json()) == []


# ---------------------------------------------------------------- 7. key before JSON
@pytest.mark.parametrize("content", [b"{bad", b"", b"x" * 5000])
def test_api_key_is_checked_before_the_body_is_parsed(fake_engine, content):
    c = client(fake_engine, api_key="k", max_body_bytes=1000)
    r = c.post(CHAT, content=content)
    assert r.status_code == 401, r.text
    assert error(r)["type"] == "authentication_error"
    r = c.post(CHAT, content=b"{bad", headers={"Authorization": "Bearer k"})
    assert r.status_code == 400


# ---------------------------------------------------------------- 8. an accurate OpenAPI document
@pytest.fixture
def openapi(fake_engine) -> dict:
    r = client(fake_engine).get("/openapi.json")
    assert r.status_code == 200
    return json.loads(r.text)


def test_openapi_metrics_is_text_and_streams_are_documented(openapi):
    metrics = openapi["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]
    for path in ("/v1/chat/completions", "/v1/completions"):
        content = openapi["paths"][path]["post"]["responses"]["200"]["content"]
        assert set(content) == {"application/json", "text/event-stream"}
        assert content["application/json"]["schema"] != {}


def test_openapi_states_the_enforced_rules(openapi):
    schemas = openapi["components"]["schemas"]
    chat = schemas["ChatCompletionRequest"]
    text = json.dumps(chat)
    # x0 xor mask_length; stream_options needs stream: machine-readable, not only prose
    assert {"required": ["x0", "mask_length"]}.items() <= _find(chat, "not").items()
    assert "stream_options" in json.dumps(chat.get("if", {})) and "then" in chat
    assert chat["then"]["properties"]["stream"] == {"const": True}
    # a non-assistant message has non-null content
    assert "UserMessage" in text and "AssistantMessage" in text
    user = schemas["UserMessage"]
    assert "content" in user["required"]
    assert {"type": "null"} not in user["properties"]["content"].get("anyOf", [])
    # integer bounds are integers, booleans are booleans
    seed = next(s for s in chat["properties"]["seed"]["anyOf"] if s.get("type") == "integer")
    assert isinstance(seed["maximum"], int) and isinstance(seed["minimum"], int)
    echo = schemas["CompletionRequest"]["properties"]["echo"]
    assert {"type": "boolean"} in echo["anyOf"]


def _find(schema: dict, key: str) -> dict:
    if key in schema:
        return schema[key]
    for sub in schema.get("allOf", []):
        if key in sub:
            return sub[key]
    return {}


def test_openapi_nullable_fields_are_nullable(openapi):
    props = openapi["components"]["schemas"]["ChatCompletionRequest"]["properties"]
    for name in ("stream", "n", "trace", "stream_options", "temperature"):
        assert {"type": "null"} in props[name].get("anyOf", []), name


# ------------------------------------------------------------ 9. request ids, empty body, headers
def test_every_response_has_a_request_id(fake_engine):
    c = client(fake_engine, api_key="k", max_body_bytes=1000)
    auth = {"Authorization": "Bearer k"}
    answers = [
        c.post(CHAT, json={"messages": MSG}, headers=auth),
        c.post(CHAT, json={"messages": []}, headers=auth),
        c.post(CHAT, json={"messages": MSG}),
        c.post(CHAT, content=b"x" * 5000, headers=auth),
        c.get("/v1/nothing", headers=auth),
        c.get("/health"),
        c.get("/metrics"),
    ]
    ids = [r.headers.get("x-request-id") for r in answers]
    assert all(ids) and len(set(ids)) == len(ids), ids
    r = c.post(CHAT, json={"messages": MSG}, headers={**auth, "X-Request-Id": "my-id-1"})
    assert r.headers["x-request-id"] == "my-id-1"
    r = c.post(
        CHAT, json={"messages": MSG}, headers={**auth, "X-Request-Id": "bad\tid" + "z" * 300}
    )
    assert r.headers["x-request-id"] != "bad\tid" + "z" * 300  # unusable ids are replaced


def test_logs_carry_the_request_id(fake_engine, caplog):
    c = client(fake_engine)
    with caplog.at_level(logging.WARNING, logger="editflow_serve"):
        body = {"messages": MSG, "some_unknown_field_for_the_log": 1}
        c.post(CHAT, json=body, headers={"X-Request-Id": "trace-me-42"})
    recs = [rec for rec in caplog.records if "some_unknown_field_for_the_log" in rec.getMessage()]
    assert recs and recs[0].request_id == "trace-me-42"


def test_empty_body_says_so(fake_engine):
    r = client(fake_engine).post(CHAT, content=b"")
    assert r.status_code == 400
    msg = error(r)["message"]
    assert "None" not in msg and "empty" in msg and "JSON" in msg


def test_sdk_exposes_the_request_id(live):
    r = live.client().chat.completions.with_raw_response.create(
        model=MODEL_NAME, messages=MSG, max_tokens=4, extra_headers={"X-Request-Id": "sdk-77"}
    )
    assert r.headers["x-request-id"] == "sdk-77" and r.request_id == "sdk-77"


def test_oversized_header_gets_the_error_envelope(live):
    """Over 16 KiB of head not yet complete: uvicorn answers before the app; still an envelope."""
    url = urlsplit(live.url)
    head = f"GET /health HTTP/1.1\r\nHost: {url.netloc}\r\nX-Big: {'a' * 20_000}".encode()
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(head)  # no blank line yet: h11 sees an oversized, incomplete head
        time.sleep(0.2)
        try:
            sock.sendall(b"\r\n\r\n")
        except OSError:
            pass  # the server may have closed already
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    headers, _, body = rest.partition(b"\r\n\r\n")
    assert status_line.split()[1] == b"431", data[:300]
    assert b"content-type: application/json" in headers.lower()
    err = json.loads(body)["error"]
    assert err["type"] == "invalid_request_error" and "header" in err["message"]


# ---------------------------------------------------------------- 10. never pretend
@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"logit_bias": {"50": -100}}, "logit_bias"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"frequency_penalty": -1}, "frequency_penalty"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
    ],
)
def test_fields_the_sampler_cannot_honour_are_refused(fake_engine, extra, param):
    r = client(fake_engine).post(CHAT, json={"messages": MSG, **extra})
    assert r.status_code == 400, r.text
    err = error(r)
    assert err["param"] == param and param in err["message"]
    assert fake_engine.seqs == []


@pytest.mark.parametrize(
    "extra",
    [
        {"logit_bias": {}},
        {"presence_penalty": 0, "frequency_penalty": 0.0},
        {"modalities": ["text"]},
    ],
)
def test_neutral_values_of_those_fields_are_accepted(fake_engine, extra):
    assert client(fake_engine).post(CHAT, json={"messages": MSG, **extra}).status_code == 200


def test_completions_refuse_penalties_and_logit_bias(fake_engine):
    c = client(fake_engine)
    for extra, param in (
        ({"logit_bias": {"5": 2}}, "logit_bias"),
        ({"presence_penalty": 1}, "presence_penalty"),
    ):
        r = c.post(COMPLETIONS, json={"prompt": "a", **extra})
        assert r.status_code == 400 and error(r)["param"] == param


def test_live_sdk_refuses_penalties(live):
    with pytest.raises(openai.BadRequestError) as err:
        live.client().chat.completions.create(
            model=MODEL_NAME, messages=MSG, frequency_penalty=0.5, max_tokens=4
        )
    assert err.value.body["param"] == "frequency_penalty"
    assert API_KEY  # the live server requires the key the client sends
