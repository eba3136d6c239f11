"""The thin ``editflow convert`` / ``editflow a2d`` commands over editflow-models."""

from __future__ import annotations

import json

import pytest
from editflow_cli.main import main
from editflow_models import EditFlowModel


def test_convert_prints_report_and_writes_checkpoint(sources, tmp_path, capsys):
    out = tmp_path / "ef"
    code = main(
        [
            "convert",
            "--model",
            str(sources["bert"]),
            "--output",
            str(out),
            "--x0",
            "masks[length:16]",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "copied: backbone <- source backbone" in printed and "new:    rate_head" in printed
    config = json.loads((out / "config.json").read_text())
    assert (config["arch"], config["x0"], config["mask_token_id"]) == (
        "bert",
        "masks[length:16]",
        4,
    )
    assert isinstance(EditFlowModel.from_pretrained(out), EditFlowModel)


def test_convert_token_id_flags(sources, tmp_path, capsys):
    out = tmp_path / "ef"
    args = [
        "convert",
        "--model",
        str(sources["llada"]),
        "--output",
        str(out),
        "--anchor-token-id",
        "7",
    ]
    assert main([*args, "--mask-token-id", "9", "--pad-token-id", "3"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["anchor_token_id"], config["mask_token_id"], config["pad_token_id"]) == (7, 9, 3)


def test_a2d_then_convert(sources, tmp_path, capsys):
    assert main(["a2d", "--model", str(sources["qwen3"]), "--output", str(tmp_path / "bidi")]) == 0
    assert json.loads((tmp_path / "bidi" / "config.json").read_text())["is_causal"] is False
    assert (
        main(["convert", "--model", str(tmp_path / "bidi"), "--output", str(tmp_path / "ef")]) == 0
    )
    assert "(qwen3," in capsys.readouterr().out


@pytest.mark.parametrize("command", ["convert", "a2d"])
def test_errors_are_one_line_without_traceback(command, sources, tmp_path, capsys):
    model = "no-such-org/no-such-model" if command == "convert" else str(sources["bert"])
    assert main([command, "--model", model, "--output", str(tmp_path / "x")]) != 0
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert ("HF_HUB_OFFLINE" in err) if command == "convert" else ("a2d needs a causal" in err)
