"""A model trained for editing repairs corrupted strings and fills holes, through the server and
the official OpenAI client (``prediction`` on chat, ``suffix`` on completions).

The language: "abcd", "efgh", "ijkl", one string per line (``pack: false``). A 2-layer BERT trains
through the command users run (``editflow-train pt --config``) with ``fim: 0.5`` (half of the
rows keep a random prefix and suffix given and fill the middle) and ``edit_x0: corrupt[p:0.2]``
for 85% of the rows (x1 with about 0.2 random edits per token, new tokens drawn from the data);
the rest start from x0 = empty. Then a live server loads the checkpoint folder:

- **repair**: 200 strings corrupted at rate 0.2 (the training corruption, over the language's
  tokens) are sent as ``prediction`` drafts; >= 95% come back as a string of the language. A
  pretrained toy has no chat turns, so its chat template renders nothing: a chat request edits
  its draft right after the anchor, as in training.
- **fill**: 200 holes (a random token span of a string removed, at least one token left around
  it) are sent as ``prompt`` + ``suffix``; >= 95% are filled with exactly the removed middle.

Measured while building this test: repair 0.975, fill 0.98-0.99 at 32 steps (n = 200 each; the
standard error at 0.975 is 0.011, so the 0.95 bars sit more than 2 standard errors below and the
seeds are fixed). Returning the drafts unchanged would score 0.41 (the drafts that the corruption
left valid), so the repair bar needs the model's edits.
"""

from __future__ import annotations

import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from editflow_testing.toy_training import toy_config

from tests.train.conftest import REPO, cli_env, write_config

from .conftest import MODEL_NAME, LiveServer

LANGUAGE = ["abcd", "efgh", "ijkl"]
N = 200


@pytest.fixture(scope="module")
def edit_server(tmp_path_factory):
    from transformers import AutoTokenizer

    root = tmp_path_factory.mktemp("edit-toy")
    data = root / "toy.txt"
    data.write_text("\n".join(LANGUAGE * 50) + "\n")
    config = toy_config(data, root / "run", "empty") | {
        "fim": 0.5,
        "edit_x0": "corrupt[p:0.2]",
        "edit_share": 0.85,
        "hidden_size": 128,
        "intermediate_size": 256,
        "num_heads": 4,
        "learning_rate": 2e-3,
        "warmup_steps": 100,
        "max_steps": 3000,
    }
    cfg = write_config(root / "c.yaml", config)
    res = subprocess.run(
        [sys.executable, "-m", "editflow_train.cli", "pt", "--config", str(cfg)],
        cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    checkpoint = root / "run" / "checkpoint-final"
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    tokenizer.chat_template = "{{ '' }}"  # no chat turns: chat edits the draft after the anchor
    tokenizer.save_pretrained(checkpoint)
    torch.set_num_threads(1)
    with LiveServer(checkpoint, max_running=64, max_queued=512) as server:
        yield server


def tokens_of(server, text: str) -> list[int]:
    return server.engine.setup.tokenizer(text, add_special_tokens=False)["input_ids"]


def corrupted_drafts(server) -> list[str]:
    """Strings of the language corrupted by corrupt[p:0.2] over the language's tokens."""
    from editflow_core import make_x0_sampler

    tok = server.engine.setup.tokenizer
    pool = torch.tensor([t for s in LANGUAGE for t in tokens_of(server, s)])
    corrupt = make_x0_sampler("corrupt[p:0.2]")
    gen, rng = torch.Generator().manual_seed(0), random.Random(0)
    return [
        tok.decode(corrupt.sample(gen, x1=tokens_of(server, rng.choice(LANGUAGE)), pool=pool))
        for _ in range(N)
    ]


def holes(server) -> list[tuple[str, str, str]]:
    """(prefix, middle, suffix) at token boundaries, at least one token given around the hole."""
    tok = server.engine.setup.tokenizer
    rng = random.Random(1)
    out = []
    while len(out) < N:
        s = rng.choice(LANGUAGE)
        ids = tokens_of(server, s)
        a, b = sorted(rng.randint(0, len(ids)) for _ in range(2))
        if a + len(ids) - b >= 1:
            out.append((tok.decode(ids[:a]), tok.decode(ids[a:b]), tok.decode(ids[b:])))
    return out


def test_corrupted_strings_are_repaired_through_prediction(edit_server):
    client = edit_server.client()
    drafts = corrupted_drafts(edit_server)
    assert sum(d not in LANGUAGE for d in drafts) > N / 2  # most drafts need an edit

    def repair(i: int):
        return client.chat.completions.create(
            model=MODEL_NAME, messages=[{"role": "user", "content": "fix"}], seed=i,
            max_tokens=16, prediction={"type": "content", "content": drafts[i]},
            extra_body={"steps": 32},
        )  # fmt: skip

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(repair, range(N)))
    texts = [a.choices[0].message.content for a in answers]
    valid = sum(t in LANGUAGE for t in texts) / N
    print(f"repaired {valid:.3f}", [(d, t) for d, t in zip(drafts, texts) if t not in LANGUAGE][:8])
    assert valid >= 0.95
    for draft, answer in zip(drafts, answers):
        details = answer.usage.completion_tokens_details
        n_draft = len(tokens_of(edit_server, draft))
        assert details.accepted_prediction_tokens + details.rejected_prediction_tokens == n_draft
        if draft in LANGUAGE and answer.choices[0].message.content == draft:
            assert details.accepted_prediction_tokens == n_draft  # nothing to fix: all kept


def test_holes_are_filled_with_the_middle_through_suffix(edit_server):
    client = edit_server.client()
    cases = holes(edit_server)

    def fill(i: int):
        prefix, _, suffix = cases[i]
        return client.completions.create(
            model=MODEL_NAME, prompt=prefix, suffix=suffix, seed=i, max_tokens=16,
            extra_body={"steps": 32},
        )  # fmt: skip

    with ThreadPoolExecutor(16) as pool:
        texts = [r.choices[0].text for r in pool.map(fill, range(N))]
    right = sum(t == middle for t, (_, middle, _) in zip(texts, cases)) / N
    wrong = [(p, s, t) for t, (p, m, s) in zip(texts, cases) if t != m]
    print(f"filled {right:.3f}", wrong[:8])
    assert right >= 0.95
