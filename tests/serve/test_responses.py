"""The Responses API: prompt building, answer shape (OpenAI's schema), refusals, the SDK."""

from __future__ import annotations

import json

import openai
import pytest
from editflow_models.prompting import prefix_ids, render_chat
from editflow_serve import ServeSettings, create_app
from fastapi.testclient import TestClient

from .conftest import MODEL_NAME
from .openai_schema import schema_errors

URL = "/v1/responses"


def client(engine) -> TestClient:
    return TestClient(create_app(engine, ServeSettings(served_model_name="m")))


def events(text: str) -> list[tuple[str, dict]]:
    """(event name, data) of a Responses SSE body; checks the name matches data.type."""
    out = []
    for block in text.split("\n\n"):
        lines = [x for x in block.split("\n") if x and not x.startswith(":")]
        if not lines:
            continue
        name = next(x[len("event: ") :] for x in lines if x.startswith("event: "))
        data = json.loads(next(x[len("data: ") :] for x in lines if x.startswith("data: ")))
        assert data["type"] == name
        out.append((name, data))
    return out


def test_string_input_and_instructions_make_the_chat_prompt(fake_engine, tokenizer):
    body = {"input": "Hi", "instructions": "Be brief.", "max_output_tokens": 7, "seed": 4}
    r = client(fake_engine).post(URL, json=body)
    assert r.status_code == 200, r.text
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    seq = fake_engine.seqs[0]
    assert seq.prefix == prefix_ids(tokenizer.bos_token_id, tokenizer, render_chat(tokenizer, chat))
    assert seq.params.max_new_tokens == 7 and seq.params.seed == 4
    out = r.json()
    assert out["object"] == "response" and out["status"] == "completed"
    assert out["output"][0]["content"][0]["text"] == "hello world"
    usage = out["usage"]
    k = len(fake_engine.reply(seq))
    assert usage["input_tokens"] == len(seq.prefix) and usage["output_tokens"] == k
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert out["instructions"] == "Be brief." and out["max_output_tokens"] == 7
    assert schema_errors("Response", out) == []


def test_message_input_keeps_roles_and_joins_parts(fake_engine, tokenizer):
    body = {
        "input": [
            {"role": "developer", "content": "Sys"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "a"}]},
            {"role": "assistant", "content": [{"type": "output_text", "text": "b"}]},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "c"},
                    {"type": "input_text", "text": "d"},
                ],
            },
        ],
        "temperature": 0.5,
        "top_p": 0.9,
    }
    r = client(fake_engine).post(URL, json=body)
    assert r.status_code == 200, r.text
    chat = [
        {"role": "system", "content": "Sys"},
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c\nd"},
    ]
    seq = fake_engine.seqs[0]
    assert seq.prefix == prefix_ids(tokenizer.bos_token_id, tokenizer, render_chat(tokenizer, chat))
    assert (seq.params.temperature, seq.params.top_p) == (0.5, 0.9)
    assert (r.json()["temperature"], r.json()["top_p"]) == (0.5, 0.9)


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"store": True}, "store"),
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"tools": [{"type": "function", "name": "f"}]}, "tools"),
        ({"reasoning": {"effort": "low"}}, "reasoning"),
        ({"text": {"format": {"type": "json_object"}}}, "text.format"),
        ({"include": ["message.output_text.logprobs"]}, "include"),
        ({"background": True}, "background"),
        ({"truncation": "auto"}, "truncation"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"input": [{"type": "function_call_output", "call_id": "c", "output": "x"}]}, "input"),
        ({"mask_length": 10**6}, "mask_length"),
        ({"model": "other"}, "model"),
    ],
)
def test_what_cannot_be_honoured_is_refused(fake_engine, extra, param):
    r = client(fake_engine).post(URL, json={"input": "Hi", **extra})
    assert r.status_code in (400, 404), r.text
    assert r.json()["error"]["param"].startswith(param)
    assert fake_engine.seqs == []


def test_neutral_settings_and_nulls_are_accepted(fake_engine):
    body = {
        "input": "Hi",
        "store": False,
        "tools": [],
        "text": {"format": {"type": "text"}},
        "truncation": "disabled",
        "instructions": None,
        "stream": None,
        "metadata": {"k": "v"},
    }
    r = client(fake_engine).post(URL, json=body)
    assert r.status_code == 200, r.text
    assert r.json()["metadata"] == {"k": "v"}


def test_stream_event_sequence_matches_openai(fake_engine):
    r = client(fake_engine).post(URL, json={"input": "Hi", "stream": True})
    assert r.headers["content-type"].startswith("text/event-stream")
    evs = events(r.text)
    assert [name for name, _ in evs] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [d["sequence_number"] for _, d in evs] == list(range(len(evs)))
    assert "".join(d["delta"] for n, d in evs if n == "response.output_text.delta") == "hello world"
    names = {
        "response.created": "ResponseCreatedEvent",
        "response.in_progress": "ResponseInProgressEvent",
        "response.output_item.added": "ResponseOutputItemAddedEvent",
        "response.content_part.added": "ResponseContentPartAddedEvent",
        "response.output_text.delta": "ResponseTextDeltaEvent",
        "response.output_text.done": "ResponseTextDoneEvent",
        "response.content_part.done": "ResponseContentPartDoneEvent",
        "response.output_item.done": "ResponseOutputItemDoneEvent",
        "response.completed": "ResponseCompletedEvent",
    }
    for name, data in evs:
        assert schema_errors(names[name], data) == [], name
    assert evs[-1][1]["response"]["usage"]["output_tokens"] == len(fake_engine.reply(None))


def test_length_cap_is_incomplete(fake_engine, tokenizer):
    fake_engine.reply = lambda seq: tokenizer("hello world again", add_special_tokens=False)[
        "input_ids"
    ][: seq.params.max_new_tokens]
    orig = fake_engine._finish

    def finish(fut, key, i, seq, on_trace):
        orig(fut, key, i, seq, on_trace)
        fut.result().finish_reason = "length"

    fake_engine._finish = finish
    r = client(fake_engine).post(URL, json={"input": "Hi", "max_output_tokens": 1})
    out = r.json()
    assert out["status"] == "incomplete"
    assert out["incomplete_details"] == {"reason": "max_output_tokens"}
    assert schema_errors("Response", out) == []


def test_sdk_responses_create_plain_and_stream(live):
    c = live.client()
    kw = dict(
        model=MODEL_NAME,
        input="Hello there",
        instructions="Answer briefly.",
        max_output_tokens=16,
        temperature=0.9,
        extra_body={"seed": 12, "steps": 6},
    )
    r = c.responses.create(**kw)
    assert r.status in ("completed", "incomplete") and r.id.startswith("resp_")
    assert isinstance(r.output_text, str)
    assert r.usage.input_tokens > 0 and 0 <= r.usage.output_tokens <= 16
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    assert r.usage.model_extra["editflow"]["steps"] == 6
    stream = list(c.responses.create(**kw, stream=True))
    kinds = [e.type for e in stream]
    assert kinds[0] == "response.created" and kinds[-1] == f"response.{r.status}"
    deltas = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
    assert deltas == r.output_text  # the same seed gives the same answer
    assert stream[-1].response.output_text == r.output_text


def test_sdk_responses_messages_and_errors(live):
    c = live.client()
    r = c.responses.create(
        model=MODEL_NAME,
        input=[{"role": "user", "content": "Hi"}],
        max_output_tokens=8,
        extra_body={"steps": 4},
    )
    assert r.output[0].role == "assistant"
    with pytest.raises(openai.BadRequestError) as err:
        c.responses.create(model=MODEL_NAME, input="Hi", previous_response_id="resp_x")
    assert err.value.body["param"] == "previous_response_id"


def own_schema_errors(app, instance) -> list[str]:
    """Violations of the 200 JSON schema our own OpenAPI document gives ``POST /v1/responses``."""
    from jsonschema import Draft202012Validator

    doc = app.openapi()
    ok = doc["paths"][URL]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    validator = Draft202012Validator({**ok, "components": doc["components"]})
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]


def test_openapi_document_describes_the_response(fake_engine):
    c = client(fake_engine)
    ok = c.app.openapi()["paths"][URL]["post"]["responses"]["200"]["content"]
    assert ok["application/json"]["schema"] == {"$ref": "#/components/schemas/ResponseObject"}
    assert "text/event-stream" in ok
    out = c.post(URL, json={"input": "Hi", "user": "u1", "metadata": {"a": "b"}}).json()
    assert own_schema_errors(c.app, out) == []
    # the schema is not vacuous: a wrong status, a missing field and a stray type all fail
    assert own_schema_errors(c.app, {**out, "status": "done"})
    assert own_schema_errors(c.app, {k: v for k, v in out.items() if k != "output"})
    assert own_schema_errors(c.app, {**out, "output": [{"type": "message"}]})
