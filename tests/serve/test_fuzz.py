"""Bad-input fuzzing with hypothesis: no body, however malformed, gets a 5xx."""

from __future__ import annotations

import json

import httpx
import pytest
from editflow_serve import ServeSettings, create_app
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import API_KEY, MODEL_NAME, FakeEngine

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
KEYS = [
    "model",
    "messages",
    "prompt",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "n",
    "stop",
    "seed",
    "stream",
    "stream_options",
    "user",
    "logprobs",
    "response_format",
    "steps",
    "x0",
    "mask_length",
    "top_k",
    "trace",
    "echo",
    "idle_stop_steps",
    "tools",
    "suffix",
    "best_of",
]
message = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["system", "developer", "user", "assistant", "tool", "", 3]),
        "content": st.one_of(
            st.text(max_size=30),
            json_values,
            st.lists(
                st.fixed_dictionaries(
                    {"type": st.sampled_from(["text", "image_url"]), "text": st.text(max_size=10)}
                )
            ),
        ),
    }
)
bodies = st.dictionaries(
    st.sampled_from(KEYS) | st.text(max_size=6),
    json_values | st.lists(message, max_size=3) | st.integers(min_value=-(2**70), max_value=2**70),
    max_size=8,
)
raw = st.binary(max_size=200) | bodies.map(lambda b: json.dumps(b).encode())


def check(status: int, text: str) -> None:
    assert status < 500, text
    if status >= 400:
        assert set(json.loads(text)["error"]) == {"message", "type", "param", "code"}


@pytest.fixture(scope="module")
def fake_client(tokenizer):
    with TestClient(
        create_app(FakeEngine(tokenizer), ServeSettings(served_model_name=MODEL_NAME))
    ) as c:
        yield c


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(path=st.sampled_from(["/v1/chat/completions", "/v1/completions"]), body=raw)
def test_fake_engine_never_5xx(fake_client, path, body):
    r = fake_client.post(path, content=body, headers={"Content-Type": "application/json"})
    check(r.status_code, r.text)


small = st.fixed_dictionaries(
    {"messages": st.lists(message, min_size=1, max_size=2)},
    optional={
        k: json_values
        for k in (
            "temperature",
            "top_p",
            "n",
            "stop",
            "seed",
            "x0",
            "top_k",
            "stream",
            "trace",
            "mask_length",
            "max_tokens",
        )
    },
)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=small)
def test_live_engine_never_5xx(live, body):
    body = {**body, "steps": 2}  # keep each real generation short
    if isinstance(body.get("max_tokens"), int) and body["max_tokens"] > 32:
        body["max_tokens"] = 10**12  # huge caps are clamped to the context, not 5xx
    r = httpx.post(
        live.url + "/v1/chat/completions",
        content=json.dumps(body),
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=60,
    )
    check(r.status_code, r.text if r.status_code >= 400 else "{}")
