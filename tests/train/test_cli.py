"""The command line: --help, YAML + overrides, and every configuration error path."""

from __future__ import annotations

import dataclasses

import pytest
from editflow_train.cli import DATACLASSES, ConfigError, build_parser, main, parse

from .conftest import SHAKESPEARE, write_config


def test_help_lists_every_field_with_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["pt", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for dc in DATACLASSES:
        for f in dataclasses.fields(dc):
            if not f.init:
                continue
            assert f"--{f.name}" in text, f.name
            assert f.metadata.get("help"), f"field {f.name} has no help text"
    assert "x0_sampler" in text and "masks[length:64]" in text


def test_yaml_then_command_line_override(tmp_path):
    cfg = write_config(
        tmp_path / "c.yaml",
        {
            "dataset": str(SHAKESPEARE),
            "learning_rate": 1e-3,
            "x0_sampler": "masks[length:8]",
            "output_dir": str(tmp_path / "o"),
            "lora_target_modules": ["Wqkv", "Wo"],
        },
    )
    model_args, data_args, args = parse("pt", ["--config", str(cfg), "--learning_rate", "5e-4"])
    assert args.learning_rate == 5e-4
    assert args.x0_sampler == "masks[length:8]"
    assert data_args.dataset == str(SHAKESPEARE)
    assert model_args.lora_target_modules == ["Wqkv", "Wo"]
    assert args.remove_unused_columns is False


def test_unknown_yaml_key_names_closest(tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", {"dataset": "x", "learning_rat": 1e-3})
    assert main(["pt", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "'learning_rat'" in err and "did you mean 'learning_rate'" in err


def test_unknown_cli_key_names_closest(capsys):
    assert main(["sft", "--dataset", "x", "--x0_sampeler", "empty"]) == 2
    err = capsys.readouterr().err
    assert "'x0_sampeler'" in err and "'x0_sampler'" in err


def test_wrong_type_names_field(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse("pt", ["--dataset", "x", "--learning_rate", "fast"])
    assert exit_info.value.code == 2
    assert "--learning_rate" in capsys.readouterr().err


def test_wrong_type_in_yaml_names_field(tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", {"dataset": "x", "max_steps": "many"})
    with pytest.raises(SystemExit) as exit_info:
        main(["pt", "--config", str(cfg)])
    assert exit_info.value.code == 2
    assert "--max_steps" in capsys.readouterr().err


def test_missing_required_field(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["pt", "--learning_rate", "1e-3"])
    assert exit_info.value.code == 2
    assert "--dataset" in capsys.readouterr().err


@pytest.mark.parametrize("field,value", [("x0_sampler", "masks[len:4]"), ("scheduler", "quartic")])
def test_invalid_spec_names_field(field, value):
    with pytest.raises(ConfigError, match=f"--{field}"):
        parse("pt", ["--dataset", "x", f"--{field}", value])


def test_invalid_choice_names_field(capsys):
    with pytest.raises(SystemExit):
        parse("pt", ["--dataset", "x", "--normalize", "tokens"])
    assert "--normalize" in capsys.readouterr().err


def test_unknown_command(capsys):
    assert main(["finetune"]) == 2
    assert "unknown command 'finetune'" in capsys.readouterr().err


def test_parser_has_config_option():
    assert "--config" in build_parser("pt").format_help()


def test_dtype_choices_and_fp16_weights_refused(capsys):
    _, _, args = parse("pt", ["--dataset", "x", "--dtype", "bf16"])
    model_args, _, _ = parse("pt", ["--dataset", "x", "--dtype", "bf16"])
    assert model_args.dtype == "bf16" and not args.bf16  # weights, not autocast
    with pytest.raises(ConfigError, match="--dtype fp16: fp16 weights cannot be trained stably"):
        parse("pt", ["--dataset", "x", "--dtype", "fp16"])
    with pytest.raises(SystemExit):
        parse("pt", ["--dataset", "x", "--dtype", "int8"])
    assert "--dtype" in capsys.readouterr().err


def test_a_from_scratch_run_in_bf16_weights_saves_bf16(tmp_path):
    import json

    from .conftest import tiny_pt_config, write_config

    cfg = write_config(
        tmp_path / "c.yaml",
        tiny_pt_config(tmp_path / "run", max_steps=2, num_samples=1, nll_bound_max_sequences=2),
    )
    assert main(["pt", "--config", str(cfg), "--dtype", "bf16"]) == 0
    config = json.loads((tmp_path / "run" / "checkpoint-final" / "config.json").read_text())
    assert config["dtype"] == "bfloat16"
