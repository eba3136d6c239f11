"""Editing through the OpenAI API: ``suffix`` on completions, ``prediction`` on chat, and the
accepted / rejected prediction token counts; the CLI and the server start from the same x0."""

from __future__ import annotations

import pytest
from editflow_models.prompting import prefix_ids, render_chat

from .conftest import MODEL_NAME
from .openai_schema import schema_errors
from .test_hardening import CHAT, COMPLETIONS, MSG, client, error


def tokens(engine, text: str) -> list[int]:
    return engine.setup.tokenizer(text, add_special_tokens=False)["input_ids"]


def test_suffix_becomes_the_given_tail_of_each_sequence(fake_engine):
    r = client(fake_engine).post(
        COMPLETIONS, json={"prompt": ["ab", "cd"], "suffix": " the end", "n": 2, "seed": 1}
    )
    assert r.status_code == 200, r.text
    eos = fake_engine.setup.eos_token_id
    assert len(fake_engine.seqs) == 4
    for seq in fake_engine.seqs:
        assert seq.suffix == [*tokens(fake_engine, " the end"), eos]
        assert seq.x0 == [fake_engine.setup.mask_token_id] * 4  # the model's x0 in the hole
    assert "completion_tokens_details" not in r.json()["usage"]


def test_prediction_is_the_draft_and_usage_counts_its_tokens(fake_engine):
    draft = "a draft answer"
    body = {"messages": MSG, "prediction": {"type": "content", "content": draft}, "n": 2}
    r = client(fake_engine).post(CHAT, json=body)
    assert r.status_code == 200, r.text
    ids = tokens(fake_engine, draft)
    for seq in fake_engine.seqs:
        assert seq.x0 == ids and seq.suffix == [fake_engine.setup.eos_token_id]
        tok = fake_engine.setup.tokenizer
        assert seq.prefix == prefix_ids(tok.bos_token_id, tok, render_chat(tok, MSG))
    usage = r.json()["usage"]
    details = usage["completion_tokens_details"]
    # the fake engine keeps no x0 token: every draft token of both choices is rejected
    assert details == {"accepted_prediction_tokens": 0, "rejected_prediction_tokens": 2 * len(ids)}
    assert schema_errors("CreateChatCompletionResponse", r.json()) == []


def test_prediction_as_text_parts(fake_engine):
    parts = [{"type": "text", "text": "one "}, {"type": "text", "text": "two"}]
    r = client(fake_engine).post(
        CHAT, json={"messages": MSG, "prediction": {"type": "content", "content": parts}}
    )
    assert r.status_code == 200, r.text
    assert fake_engine.seqs[0].x0 == tokens(fake_engine, "one two")


@pytest.mark.parametrize(
    ("endpoint", "extra", "param", "words"),
    [
        (CHAT, {"prediction": {"type": "audio", "content": "x"}}, "prediction", "'content'"),
        (CHAT, {"prediction": {"type": "content", "content": "x " * 40}, "max_tokens": 3},
         "prediction", "max_completion_tokens"),
        (COMPLETIONS, {"suffix": "word " * 600}, "suffix", "no room"),
    ],
)  # fmt: skip
def test_what_cannot_be_honoured_is_a_400_naming_the_field(
    fake_engine, endpoint, extra, param, words
):
    body = {"messages": MSG} if endpoint == CHAT else {"prompt": "ab"}
    r = client(fake_engine).post(endpoint, json={**body, **extra})
    assert r.status_code == 400, r.text
    err = error(r)
    assert err["param"] == param and words in err["message"], err
    assert fake_engine.seqs == []  # nothing was built or submitted


def test_null_suffix_and_prediction_are_the_defaults(fake_engine):
    c = client(fake_engine)
    assert c.post(COMPLETIONS, json={"prompt": "ab", "suffix": None}).status_code == 200
    assert c.post(CHAT, json={"messages": MSG, "prediction": None}).status_code == 200
    assert all(seq.suffix == [] for seq in fake_engine.seqs)


def test_sdk_prediction_and_suffix_on_the_live_model(live):
    """The official client's own parameters reach the model: accepted + rejected = the draft's
    tokens per choice, and a suffix run answers with the middle only."""
    c = live.client()
    draft = "Hello there, general"
    r = c.chat.completions.create(
        model=MODEL_NAME, messages=MSG_LIVE, n=2, seed=4, max_tokens=24,
        prediction={"type": "content", "content": draft},
    )  # fmt: skip
    details = r.usage.completion_tokens_details
    n_draft = len(live.engine.setup.tokenizer(draft, add_special_tokens=False)["input_ids"])
    assert details.accepted_prediction_tokens + details.rejected_prediction_tokens == 2 * n_draft
    assert details.accepted_prediction_tokens >= 0
    done = c.completions.create(model=MODEL_NAME, prompt="ab", suffix=" yz", seed=2, max_tokens=12)
    assert done.choices[0].finish_reason in ("stop", "length")
    assert not done.choices[0].text.endswith(" yz")  # the suffix is given, not returned


MSG_LIVE = [{"role": "user", "content": "Hello there"}]


def test_cli_and_server_give_the_same_text_for_a_seed(live, tiny_model_dir):
    """x0 comes from GenerationSetup.start on both sides, so a seed means one text."""
    from editflow_cli.generate import run_one
    from editflow_core import SamplingParams
    from editflow_models import load_generation_setup

    setup = load_generation_setup(tiny_model_dir)
    for seed in (0, 7):
        via_api = live.client().completions.create(
            model=MODEL_NAME, prompt="ab", seed=seed, max_tokens=24, extra_body={"steps": 8}
        )
        params = SamplingParams(steps=8, seed=seed, max_new_tokens=24)
        local = run_one(setup, setup.text_prefix("ab"), params)
        assert via_api.choices[0].text == setup.decode(local.completion)
