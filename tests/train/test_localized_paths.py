"""Localized paths in training: ``lam_prop`` from the command line to the collator's paths and
the model config, and a toy model trained on them still reproduces its language (slow)."""

from __future__ import annotations

import collections
import json
import math

import pytest
import torch
from editflow_core import make_scheduler, make_x0_sampler
from editflow_train import EditFlowCollator

from .conftest import tiny_pt_config, write_config


def collator(**kw) -> EditFlowCollator:
    return EditFlowCollator(
        x0_sampler=make_x0_sampler("masks[length:6]"), scheduler=make_scheduler("cubic"),
        pad_token_id=0, mask_token_id=3, vocab_size=50, **kw,
    )  # fmt: skip


def test_the_collator_draws_localized_paths_with_their_edit_weights():
    examples = [{"input_ids": [1, *range(10, 19)], "frozen": 1}] * 64
    torch.manual_seed(0)
    plain = collator()(examples)
    assert torch.equal(plain["edit_weight"], torch.ones(len(plain["edit_op"])))
    torch.manual_seed(0)
    local = collator(lam_prop=4.0)(examples)
    assert len(local["edit_weight"]) == len(local["edit_op"])
    assert (local["edit_weight"] >= 1).all() and (local["edit_weight"] > 1).any()
    # ragged groups carry them too
    torch.manual_seed(0)
    groups = collator(lam_prop=4.0, max_tokens_per_forward=64)(examples)["groups"]
    assert sum(len(g["edit_weight"]) for g in groups) == len(local["edit_weight"])


def test_lam_prop_reaches_the_model_config_and_continues(tmp_path):
    from editflow_train.cli import main

    out = tmp_path / "local"
    cfg = tiny_pt_config(out, max_steps=4, num_samples=0, nll_bound_samples=0, lam_prop=4.0)
    assert main(["pt", "--config", str(write_config(tmp_path / "a.yaml", cfg))]) == 0
    final = out / "checkpoint-final"
    assert json.loads((final / "config.json").read_text())["lam_prop"] == 4.0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["global_step"] == 4 and math.isfinite(summary["train_loss"])
    # a run from that checkpoint keeps its lam_prop unless told otherwise
    out2 = tmp_path / "more"
    cfg2 = tiny_pt_config(out2, max_steps=2, num_samples=0, nll_bound_samples=0)
    cfg2["model_name_or_path"] = str(final)
    assert main(["pt", "--config", str(write_config(tmp_path / "b.yaml", cfg2))]) == 0
    saved = json.loads((out2 / "checkpoint-final" / "config.json").read_text())
    assert saved["lam_prop"] == 4.0


def test_lam_prop_with_reverse_rates_is_refused(tmp_path, capsys):
    from editflow_train.cli import main

    cfg = tiny_pt_config(tmp_path / "r", max_steps=2, lam_prop=1.0, reverse_rates=True)
    assert main(["pt", "--config", str(write_config(tmp_path / "r.yaml", cfg))]) == 1
    assert "plain paths only" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("name", ["empty", "masks"])
def test_a_toy_trained_on_localized_paths_reproduces_its_language(tmp_path, name):
    """The toy of ``test_learns_toy_language`` (same model, budget and total-variation bound:
    0.10 at 64 steps with 2,000 samples, argued there) trained with lam_prop = 4."""
    import subprocess
    import sys

    from editflow_core import SamplingParams
    from editflow_models.generation import load_generation_setup

    from .conftest import REPO, cli_env
    from .test_learns_toy_language import TEXTS, X0, language, total_variation, toy_config

    data = tmp_path / "toy.txt"
    data.write_text("\n".join(t for t, p in TEXTS.items() for _ in range(round(100 * p))) + "\n")
    cfg = toy_config(data, tmp_path / "run", X0[name][0]) | {"lam_prop": 4.0}
    proc = subprocess.run(
        [sys.executable, "-m", "editflow_train.cli", "pt", "--config"]
        + [str(write_config(tmp_path / "toy.yaml", cfg))],
        cwd=REPO,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    setup = load_generation_setup(tmp_path / "run" / "checkpoint-final")
    assert setup.model.config.lam_prop == 4.0
    n, steps = 2000, 64
    gen = torch.Generator().manual_seed(steps)
    results = setup.sampler().generate(
        [setup.text_prefix("")] * n,
        [setup.draw_x0(gen) for _ in range(n)],
        [SamplingParams(steps=steps, seed=i, max_new_tokens=10) for i in range(n)],
    )
    counts = collections.Counter(tuple(r.tokens[1:]) for r in results)
    tv, malformed = total_variation(counts, language(setup), n)
    print(f"{name}, lam_prop 4, {steps} steps: TV {tv:.3f}, malformed {malformed:.3f}")
    assert tv <= 0.10, (tv, malformed, counts.most_common(6))
