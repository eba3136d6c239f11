"""Guidance on a model trained by editflow-train: a conditional toy language where the prompt
picks the completion's distribution.

Instruction records: prompt "p" -> "x" (.3) / "y" (.2), prompt "q" -> "x" (.1) / "y" (.4), so
after "p" the answer is "x" with probability 0.6, after "q" it is "y" with 0.8, and without a
prompt "x" .4, "y" .6. The model trains from scratch through the sft command, prompts frozen and
dropped with ``cond_drop``, with the given-token embedding, x0 = two masks and no time
embedding (with x0 = empty and a time embedding on every token this small model did not learn
to read the prompt within the budget: both prompts gave the marginal). Sampled through the
product's path
(chat prefix, ``load_generation_setup``, ``BatchSampler``), with g = 0 each prompt's answers
follow its conditional distribution, and guidance (g > 0) raises the probability of each
prompt's most likely answer (the rule's sequence-level tilt p(c | prompt)^(1 + g) p(c)^(-g)
would give 0.84 and 0.95 at g = 1.5).
"""

from __future__ import annotations

import collections
import json
import math
import subprocess
import sys

import pytest

from .conftest import REPO, cli_env, write_config
from .test_learns_toy_language import toy_config

RECORDS = {("p", "x"): 0.3, ("p", "y"): 0.2, ("q", "x"): 0.1, ("q", "y"): 0.4}
FAVOURITE = {"p": ("x", 0.6), "q": ("y", 0.8)}


@pytest.fixture(scope="module")
def guided_setup(tmp_path_factory):
    from editflow_models.generation import load_generation_setup

    root = tmp_path_factory.mktemp("guided-toy")
    data = root / "toy.jsonl"
    records = [
        json.dumps({"instruction": q, "output": a})
        for (q, a), p in RECORDS.items()
        for _ in range(round(100 * p))
    ]
    data.write_text("\n".join(records) + "\n")
    config = toy_config(data, root / "run", "masks[length:2]")
    config["time_conditioning"] = False  # x0 = masks: t shows in the share of masks
    config |= {"cond_drop": 0.3, "given_embedding": True, "max_length": 48}
    config["max_position_embeddings"] = 64
    config.pop("txt_sample_by")
    config.pop("pack")
    cfg = write_config(root / "c.yaml", config)
    res = subprocess.run(
        [sys.executable, "-m", "editflow_train.cli", "sft", "--config", str(cfg)],
        cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    return load_generation_setup(root / "run" / "checkpoint-final")


def completions(setup, prompt: str, g: float, n: int) -> collections.Counter:
    from editflow_core import SamplingParams

    prefix = setup.chat_prefix([{"role": "user", "content": prompt}])
    results = setup.sampler().generate(
        [prefix] * n,
        [setup.draw_x0() for _ in range(n)],
        [SamplingParams(steps=32, seed=i, max_new_tokens=6, guidance_scale=g) for i in range(n)],
    )
    return collections.Counter(setup.tokenizer.decode(r.completion) for r in results)


@pytest.mark.parametrize("prompt", list(FAVOURITE))
def test_guidance_raises_each_prompts_most_likely_completion(guided_setup, prompt):
    n = 800
    favourite, p_true = FAVOURITE[prompt]
    plain = completions(guided_setup, prompt, 0.0, n)
    guided = completions(guided_setup, prompt, 1.5, n)
    share_plain, share_guided = plain[favourite] / n, guided[favourite] / n
    print(f"{prompt}: g=0 {plain.most_common(3)}, g=1.5 {guided.most_common(3)}")
    se = math.sqrt(p_true * (1 - p_true) / n)
    assert abs(share_plain - p_true) < 0.06 + 3 * se  # the model learned the conditional
    assert share_guided > share_plain + 0.08  # guidance sharpens it towards the favourite
    assert (plain[favourite] + plain[{"x": "y", "y": "x"}[favourite]]) / n > 0.9  # well formed
