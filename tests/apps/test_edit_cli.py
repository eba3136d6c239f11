"""Editing from the command line: `editflow generate --suffix` and `editflow edit --draft`.

Each text is checked against the library run with the same seed (``run_one``), and the sequence
the sampler was given is recorded, so a flag that is parsed but not passed on fails here.
"""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from editflow_cli.main import main

CLI = [sys.executable, "-m", "editflow_cli.main"]
DRAFT = "The quick brown fox jumps over the dog."


@pytest.fixture(scope="module")
def setup(tiny_checkpoint):
    from editflow_models.generation import load_generation_setup

    return load_generation_setup(tiny_checkpoint)


@pytest.fixture
def started(monkeypatch):
    """The Start of every sequence the CLI queues (its prefix, x0 and suffix), as run."""
    from editflow_models.generation import Start

    seen: list[Start] = []
    original = Start.add_to

    def add_to(self, sampler, params, key=None):
        seen.append(Start(list(self.prefix), list(self.x0), list(self.suffix), self.draft))
        return original(self, sampler, params, key)

    monkeypatch.setattr(Start, "add_to", add_to)
    return seen


def library_text(setup, prompt, seed, steps, max_new_tokens=256, **kw):
    from editflow_cli.generate import run_one
    from editflow_core import SamplingParams

    params = SamplingParams(steps=steps, seed=seed, max_new_tokens=max_new_tokens)
    return setup.decode(run_one(setup, setup.text_prefix(prompt), params, **kw).completion)


def ids(setup, text):
    return setup.tokenizer(text, add_special_tokens=False)["input_ids"]


def error_lines(err):
    """The CLI's own error lines (a model load may print progress bars to stderr too)."""
    return [line for line in err.splitlines() if ": error:" in line]


def test_generate_suffix_prints_the_middle_the_library_writes(
    tiny_checkpoint, setup, started, capsys
):
    prompt, suffix = "The quick", " over the lazy dog."
    args = ["generate", "--model", str(tiny_checkpoint), "--prompt", prompt, "--suffix", suffix]
    assert main([*args, "--steps", "8", "--seed", "2", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert not error_lines(err)
    (start,) = started
    # the sequence ran with the prompt before x0 and the suffix + EOS after it
    assert start.prefix == setup.text_prefix(prompt)
    assert start.suffix == [*ids(setup, suffix), setup.eos_token_id] and not start.draft
    want = library_text(setup, prompt, 2, 8, suffix=suffix)
    assert out == want + "\n"
    # without --suffix the same seed draws the same x0 and nothing follows it
    started.clear()
    assert main([*args[:-2], "--steps", "8", "--seed", "2", "--quiet"]) == 0
    assert started[0].suffix == [] and started[0].x0 == start.x0


def test_generate_cuts_a_drawn_x0_to_max_new_tokens(tiny_checkpoint, started, capsys):
    # the tiny model's x0 is 8 masks; the server cuts it to the budget, and so does the CLI
    args = ["generate", "--model", str(tiny_checkpoint), "--steps", "4", "--seed", "0"]
    assert main([*args, "--max-new-tokens", "4", "--quiet"]) == 0
    assert len(started[0].x0) == 4 and capsys.readouterr().out.strip()


def test_generate_suffix_leaving_no_room_is_one_error_line(tiny_checkpoint, setup, capsys):
    suffix = " dog" * setup.max_length
    code = main(["generate", "--model", str(tiny_checkpoint), "--suffix", suffix, "--quiet"])
    assert code == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert "no room to write" in line and "suffix" in line


def test_edit_a_draft_file_and_stdin(
    tiny_checkpoint, setup, started, tmp_path, capsys, monkeypatch
):
    draft_file = tmp_path / "draft.txt"
    draft_file.write_text(DRAFT + "\n")  # one final newline is dropped
    base = ["edit", "--model", str(tiny_checkpoint), "--steps", "8", "--seed", "1", "--quiet"]
    assert main([*base, "--draft", str(draft_file)]) == 0
    out, err = capsys.readouterr()
    assert not error_lines(err)
    # the draft is x0, a given EOS follows it, and the text is the library's for this seed
    (start,) = started
    assert start.draft and start.x0 == ids(setup, DRAFT)
    assert start.suffix == [setup.eos_token_id] and start.prefix == setup.text_prefix("")
    budget = max(2 * len(start.x0), 256)
    assert out == library_text(setup, "", 1, 8, max_new_tokens=budget, draft=DRAFT) + "\n"

    started.clear()  # (the library's run was recorded too)
    monkeypatch.setattr("sys.stdin", io.StringIO(DRAFT + "\n"))
    assert main([*base, "--draft", "-"]) == 0
    assert capsys.readouterr().out == out and started == [start]

    # --prompt is given text before the draft
    assert main([*base, "--draft", str(draft_file), "--prompt", "Fix:"]) == 0
    assert started[1].prefix == setup.text_prefix("Fix:") and started[1].x0 == start.x0
    capsys.readouterr()


def test_edit_trace_goes_to_stderr(tiny_checkpoint, tmp_path, capsys):
    draft_file = tmp_path / "draft.txt"
    draft_file.write_text(DRAFT)
    base = ["edit", "--model", str(tiny_checkpoint), "--draft", str(draft_file)]
    base += ["--steps", "6", "--seed", "4"]
    assert main([*base, "--quiet"]) == 0
    plain = capsys.readouterr().out
    assert main([*base, "--trace"]) == 0
    out, err = capsys.readouterr()
    assert out == plain, "the trace must not change the text or reach stdout"
    steps = [line for line in err.splitlines() if line.startswith("step ")]
    assert steps and steps[0].startswith("step 0 t=0.000:")
    assert any(op in err for op in ("+'", "-'", "~'"))
    assert "forward passes" in err and "step " not in out


def test_edit_missing_draft_file_is_one_line(tiny_checkpoint, tmp_path):
    missing = tmp_path / "nope.txt"
    r = subprocess.run(
        [*CLI, "edit", "--model", str(tiny_checkpoint), "--draft", str(missing)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [
        f"editflow edit: error: no draft file at {missing} (use --draft - to read stdin)"
    ]


def test_edit_draft_longer_than_max_new_tokens_is_an_error(tiny_checkpoint, tmp_path):
    draft_file = tmp_path / "draft.txt"
    draft_file.write_text(DRAFT)
    r = subprocess.run(
        [*CLI, "edit", "--model", str(tiny_checkpoint), "--draft", str(draft_file)]
        + ["--max-new-tokens", "3"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    (line,) = error_lines(r.stderr)
    assert line.startswith("editflow edit: error: the draft is ")
    assert "more than --max-new-tokens 3: raise --max-new-tokens" in line


def test_edit_non_utf8_draft_is_one_line(tiny_checkpoint, tmp_path, capsys):
    bad = tmp_path / "draft.bin"
    bad.write_bytes(b"\xff\xfe\x00")
    assert main(["edit", "--model", str(tiny_checkpoint), "--draft", str(bad)]) == 2
    assert error_lines(capsys.readouterr().err) == [
        f"editflow edit: error: the draft file {bad} is not UTF-8 text"
    ]


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        ("edit", ["--draft draft.txt", "--draft - --trace", "--prompt", "twice the draft's"]),
        ("generate", ["--suffix", "fill in the middle"]),
    ],
)
def test_help_shows_the_editing_examples(command, shown, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps long lines
    assert f"usage: editflow {command}" in out and "examples:" in out
    for text in shown:
        assert text in out, text


def test_generate_suffix_gives_the_servers_middle_for_a_seed(live_server, tiny_checkpoint, capsys):
    import openai

    url, key = live_server
    client = openai.OpenAI(base_url=url, api_key=key)
    model = client.models.list().data[0].id
    prompt, suffix = "The quick", " over the lazy dog."
    for seed in (0, 5):
        assert (
            main(
                ["generate", "--model", str(tiny_checkpoint), "--prompt", prompt]
                + ["--suffix", suffix, "--steps", "6", "--seed", str(seed), "--quiet"]
            )
            == 0
        )
        local = capsys.readouterr().out
        remote = client.completions.create(
            model=model, prompt=prompt, suffix=suffix, seed=seed, max_tokens=256,
            temperature=1.0, top_p=1.0, extra_body={"steps": 6, "top_k": 0},
        )  # fmt: skip
        assert local == remote.choices[0].text + "\n"
