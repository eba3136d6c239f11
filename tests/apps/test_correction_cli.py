"""``--correction`` on generate, edit and chat: passed on to the sampler, 0 is the plain sampler.

Texts are checked against the library run with the same seed (``run_one``); a model without
reverse rates and a bad value are one error line (exit 2).
"""

from __future__ import annotations

import pytest
from editflow_cli.main import build_parser, main

DRAFT = "The quick brown fox jumps over the dog."


@pytest.fixture(scope="module")
def reverse_checkpoint(tmp_path_factory):
    from editflow_testing import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("ckpt") / "tiny-reverse", reverse_rates=True)


@pytest.fixture(scope="module")
def setup(reverse_checkpoint):
    from editflow_models.generation import load_generation_setup

    return load_generation_setup(reverse_checkpoint)


def library(setup, seed, steps, correction=0.0, **kw):
    """The text and forwards of the library run: ``run_one`` with these settings."""
    from editflow_cli.generate import run_one
    from editflow_core import SamplingParams

    params = SamplingParams(steps=steps, seed=seed, max_new_tokens=256, correction=correction)
    res = run_one(setup, setup.text_prefix(""), params, **kw)
    return setup.decode(res.completion), res.forward_passes


def error_lines(err):
    return [line for line in err.splitlines() if ": error:" in line]


def test_generate_correction_zero_is_the_plain_sampler(reverse_checkpoint, setup, capsys):
    base = ["generate", "--model", str(reverse_checkpoint), "--steps", "8", "--seed", "3"]
    assert main(base) == 0
    plain, err = capsys.readouterr()
    assert "8 forward passes" in err
    assert main([*base, "--correction", "0"]) == 0
    assert capsys.readouterr().out == plain
    text, forwards = library(setup, 3, 8)
    assert plain == text + "\n" and forwards == 8


def test_generate_correction_runs_the_corrector(reverse_checkpoint, setup, capsys):
    base = ["generate", "--model", str(reverse_checkpoint), "--steps", "8", "--seed", "3"]
    assert main([*base, "--correction", "2"]) == 0
    out, err = capsys.readouterr()
    text, forwards = library(setup, 3, 8, correction=2.0)
    assert out == text + "\n" and forwards > 8
    assert f"{forwards} forward passes" in err


def test_edit_takes_correction(reverse_checkpoint, setup, tmp_path, capsys):
    draft = tmp_path / "draft.txt"
    draft.write_text(DRAFT)
    base = ["edit", "--model", str(reverse_checkpoint), "--draft", str(draft), "--seed", "1"]
    assert main([*base, "--steps", "6", "--correction", "1.5"]) == 0
    out, err = capsys.readouterr()
    assert not error_lines(err)
    n_draft = len(setup.tokenizer(DRAFT, add_special_tokens=False)["input_ids"])
    from editflow_cli.generate import run_one
    from editflow_core import SamplingParams

    params = SamplingParams(steps=6, seed=1, max_new_tokens=max(2 * n_draft, 256), correction=1.5)
    res = run_one(setup, setup.text_prefix(""), params, draft=DRAFT)
    assert out == setup.decode(res.completion) + "\n" and res.forward_passes > 6


def test_chat_parses_correction():
    assert build_parser().parse_args(["chat", "--correction", "0.5"]).correction == 0.5


@pytest.mark.parametrize("command", ["generate", "edit"])
def test_correction_without_reverse_rates_is_one_error_line(
    command, tiny_checkpoint, tmp_path, capsys
):
    args = [command, "--model", str(tiny_checkpoint), "--correction", "1", "--steps", "4"]
    if command == "edit":
        (tmp_path / "d.txt").write_text(DRAFT)
        args += ["--draft", str(tmp_path / "d.txt")]
    assert main(args) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert "--correction" in line and "reverse_rates" in line


@pytest.mark.parametrize("bad", ["-1", "nan", "inf"])
def test_a_bad_correction_is_one_error_line(reverse_checkpoint, bad, capsys):
    args = ["generate", "--model", str(reverse_checkpoint), f"--correction={bad}"]
    assert main(args) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert "--correction must be a number >= 0" in line
