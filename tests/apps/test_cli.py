"""The `editflow` command: help, generate, chat (stdin, pty, server) and error paths."""

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest
from editflow_cli.main import build_parser, main

REPO = Path(__file__).resolve().parents[2]

CLI = [sys.executable, "-m", "editflow_cli.main"]


def run_cli(args, input_text=None, timeout=180):
    return subprocess.run(
        CLI + args, input=input_text, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize("command", ["convert", "a2d", "generate", "chat", "eval"])
def test_every_command_has_help_with_examples(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: editflow {command}" in out and "examples:" in out


def test_top_level_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("convert", "a2d", "generate", "chat"):
        assert command in out


def test_generate_is_deterministic_under_a_seed(tiny_checkpoint, capsys):
    args = [
        "generate",
        "--model",
        str(tiny_checkpoint),
        "--prompt",
        "The quick",
        "--steps",
        "12",
        "--quiet",
    ]
    assert main([*args, "--seed", "3"]) == 0
    first = capsys.readouterr().out
    assert main([*args, "--seed", "3"]) == 0
    second = capsys.readouterr().out
    assert first == second and first.strip()
    outs = set()
    for seed in range(4, 8):
        main([*args, "--seed", str(seed)])
        outs.add(capsys.readouterr().out)
    assert len(outs) > 1, "different seeds all gave the same text"


def test_generate_writes_text_to_stdout_and_stats_and_trace_elsewhere(
    tiny_checkpoint, tmp_path, capsys
):
    trace = tmp_path / "trace.txt"
    base = ["generate", "--model", str(tiny_checkpoint), "--steps", "10", "--seed", "1"]
    assert main([*base, "--trace-file", str(trace)]) == 0
    out, err = capsys.readouterr()
    assert "forward passes" in err and "forward passes" not in out
    lines = trace.read_text().splitlines()
    assert len(lines) == 10 and lines[0].startswith("step 0 t=0.000:")
    assert any(op in trace.read_text() for op in ("+'", "-'", "~'"))
    assert main([*base, "--trace"]) == 0
    out2, err2 = capsys.readouterr()
    assert out2 == out and "step 9" in err2


def test_cli_errors_are_one_line_without_traceback(tmp_path, tiny_checkpoint):
    r = run_cli(["generate", "--model", str(tmp_path / "missing")])
    assert r.returncode == 2
    assert "no Edit Flow checkpoint" in r.stderr and "editflow-train pt" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_generate_rejects_bad_sampling_values(tiny_checkpoint, capsys):
    assert main(["generate", "--model", str(tiny_checkpoint), "--top-p", "0"]) == 2
    assert "--top-p must be in (0, 1]" in capsys.readouterr().err


def test_convert_unsupported_architecture_is_one_line(tmp_path, capsys):
    src = tmp_path / "gpt"
    src.mkdir()
    (src / "config.json").write_text('{"model_type": "gpt2"}')
    assert main(["convert", "--model", str(src), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "gpt2" in err and "modernbert" in err and len(err.strip().splitlines()) == 1


def expected_reply(checkpoint, messages, seed, steps, chat=True):
    """The reply the CLI must print: the library run with the same prefix, seed and steps."""
    from editflow_cli.generate import run_one
    from editflow_core import SamplingParams
    from editflow_models.generation import load_generation_setup

    s = load_generation_setup(checkpoint)
    prefix = s.chat_prefix(messages) if chat else s.text_prefix(messages)
    return s.decode(
        run_one(s, prefix, SamplingParams(steps=steps, seed=seed, max_new_tokens=256)).completion
    ).strip()


def chat_stdin(monkeypatch, capsys, args, text):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    code = main(["chat", *args])
    return code, *capsys.readouterr()


def test_chat_through_stdin_with_history_reset_and_exit(tiny_checkpoint, monkeypatch, capsys):
    args = ["--model", str(tiny_checkpoint), "--steps", "8", "--seed", "0"]
    code, out, err = chat_stdin(
        monkeypatch,
        capsys,
        args,
        "Hello there\nAnd then?\n/reset\nHow are you?\n/exit\nnever read\n",
    )
    assert code == 0
    r1 = expected_reply(tiny_checkpoint, [{"role": "user", "content": "Hello there"}], 0, 8)
    r2 = expected_reply(
        tiny_checkpoint,
        [
            {"role": "user", "content": "Hello there"},
            {"role": "assistant", "content": r1},
            {"role": "user", "content": "And then?"},
        ],
        0,
        8,
    )
    r3 = expected_reply(tiny_checkpoint, [{"role": "user", "content": "How are you?"}], 0, 8)
    assert out == f"{r1}\n{r2}\n{r3}\n"
    assert "(conversation reset)" in err
    # Ctrl-D (end of input) ends the chat as /exit does
    code, out, _ = chat_stdin(monkeypatch, capsys, args, "How are you?\n")
    assert code == 0 and out == f"{r3}\n"


def test_chat_continuation_mode(tiny_checkpoint, monkeypatch, capsys):
    args = ["--model", str(tiny_checkpoint), "--no-chat-template", "--steps", "6", "--seed", "0"]
    code, out, _ = chat_stdin(monkeypatch, capsys, args, "The quick brown fox\n")
    assert code == 0
    assert out == expected_reply(tiny_checkpoint, "The quick brown fox", 0, 6, chat=False) + "\n"


def test_chat_in_a_pseudo_terminal_shows_prompt_and_live_view(tiny_checkpoint):
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.execv(
            sys.executable,
            [*CLI, "chat", "--model", str(tiny_checkpoint), "--steps", "8", "--seed", "0"],
        )
    out = b""

    def read_until(marker, timeout=120):
        nonlocal out
        import time

        end = time.time() + timeout
        while marker not in out and time.time() < end:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    out += os.read(fd, 4096)
                except OSError:
                    break
        return marker in out

    assert read_until(b"you> ")
    os.write(fd, b"Hello\r")
    assert read_until(b"model>")
    os.write(fd, b"/exit\r")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert b"/reset forgets" in out


def test_chat_against_a_live_server(live_server, monkeypatch, capsys):
    url, key = live_server
    args = ["--server", url, "--api-key", key, "--steps", "6", "--seed", "0"]
    code, out, err = chat_stdin(monkeypatch, capsys, args, "Hello\n/reset\nHi again\n/exit\n")
    assert code == 0, err
    import openai

    client = openai.OpenAI(base_url=url, api_key=key)
    model = client.models.list().data[0].id
    want = [
        client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": m}],
            seed=0,
            max_tokens=256,
            temperature=1.0,
            top_p=1.0,
            extra_body={"steps": 6, "top_k": 0},
        )
        .choices[0]
        .message.content.strip()
        for m in ("Hello", "Hi again")
    ]
    assert out == f"{want[0]}\n{want[1]}\n"


def test_chat_bad_key_and_unreachable_server_are_one_line(live_server, monkeypatch, capsys):
    url, _ = live_server
    code, _, err = chat_stdin(monkeypatch, capsys, ["--server", url, "--api-key", "wrong"], "Hi\n")
    assert code == 2 and "rejected the API key" in err
    code, _, err = chat_stdin(
        monkeypatch, capsys, ["--server", "http://127.0.0.1:9/v1", "--api-key", "x"], "Hi\n"
    )
    assert code == 2 and "cannot reach a server" in err and len(err.strip().splitlines()) == 1


def test_chat_rejects_model_and_server_together(tiny_checkpoint, monkeypatch, capsys):
    code, _, err = chat_stdin(
        monkeypatch, capsys, ["--model", str(tiny_checkpoint), "--server", "http://x/v1"], ""
    )
    assert code == 2 and "not both" in err


def test_parser_builds():
    assert build_parser().prog == "editflow"


def test_remote_live_view_replays_the_trace_to_the_reply(live_server, tiny_checkpoint):
    import argparse
    import io

    from editflow_cli.chat import Conversation, RemoteBackend
    from rich.console import Console

    url, key = live_server
    args = argparse.Namespace(
        server=url,
        api_key=key,
        served_model=None,
        steps=6,
        top_k=0,
        temperature=1.0,
        top_p=1.0,
        seed=3,
        max_new_tokens=40,
    )
    conv = Conversation(chat=True)
    conv.reset()
    conv.add_user("Hello")
    plain = RemoteBackend(args).reply(conv)
    screen = io.StringIO()
    shown = []
    console = Console(file=screen, force_terminal=True, width=120)
    backend = RemoteBackend(args, console, visual=True)
    import editflow_cli.chat as chat_mod

    original = chat_mod.apply_trace_entry
    tokens: list[int] = []

    def spy(texts, entry, show=None):
        out = original(texts, entry, show)
        shown.append("".join(out))
        if entry.get("step") == -1:
            tokens[:] = entry["tokens"]
        for e in reversed(entry.get("edits", [])):  # the same replay, on token ids
            if e["op"] == "ins":
                tokens.insert(e["pos"] + 1, e["token"])
            elif e["op"] == "del":
                del tokens[e["pos"]]
            else:
                tokens[e["pos"]] = e["token"]
        return out

    chat_mod.apply_trace_entry = spy
    try:
        live = backend.reply(conv)
    finally:
        chat_mod.apply_trace_entry = original
    assert live == plain
    assert len(shown) >= 2, "no trace steps arrived"
    # token by token texts lose characters split across byte-level tokens; the ids do not
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    eos = tokenizer.eos_token_id
    tokens = tokens[: tokens.index(eos)] if eos in tokens else tokens
    replayed = tokenizer.decode(tokens, skip_special_tokens=True)
    assert replayed.strip() == plain, "replaying the trace must give the reply"


def test_eval_prints_the_bound_and_json(tiny_checkpoint, capsys):
    import json

    data = REPO / "data" / "tiny-shakespeare.txt"
    args = ["eval", "--model", str(tiny_checkpoint), "--data", f"{data}[train:20,test:6]"]
    args += ["--max-length", "24", "--samples", "4", "--max-sequences", "5"]
    assert main(args) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("held-out likelihood bound: ") and "bits/char" in line
    assert main([*args, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["sequences"] == 5 and result["samples"] == 4
    # a random model: its bound is far above a character model's (a few bits per char)
    assert result["bpc"] > 5 and 0 < result["bpc_se"] < result["bpc"]
    assert f"{result['bpc']:.3f} +- {result['bpc_se']:.3f} bits/char" in line  # same seed
    assert main([*args[:4], f"{data}[train:20]", "--split", "test"]) == 2
    assert "no test split" in capsys.readouterr().err


def test_generate_with_bf16_weights(tiny_checkpoint, capsys):
    args = ["generate", "--model", str(tiny_checkpoint), "--steps", "6", "--quiet", "--seed", "1"]
    assert main([*args, "--dtype", "bf16"]) == 0
    assert capsys.readouterr().out.strip()
    with pytest.raises(SystemExit):
        main([*args, "--dtype", "int4"])
    assert "invalid choice: 'int4'" in capsys.readouterr().err
