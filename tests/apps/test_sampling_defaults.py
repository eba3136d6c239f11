"""The CLI's sampling defaults are SamplingParams' own, read from there (no second copy)."""

from __future__ import annotations

import dataclasses

import pytest
from editflow_cli.main import build_parser
from editflow_core import SamplingParams

#: CLI flag dest -> the SamplingParams field whose default it takes
FLAGS = {
    "steps": "steps",
    "temperature": "temperature",
    "top_k": "top_k",
    "top_p": "top_p",
    "max_new_tokens": "max_new_tokens",
    "guidance": "guidance_scale",
    "correction": "correction",
}


@pytest.mark.parametrize("command", ["generate", "chat"])
def test_sampling_flags_default_to_sampling_params(command, monkeypatch):
    sampling = {f.name: f.default for f in dataclasses.fields(SamplingParams)}
    args = build_parser().parse_args([command])
    assert {flag: getattr(args, flag) for flag in FLAGS} == {
        flag: sampling[field] for flag, field in FLAGS.items()
    }
    changed = {"steps": 77, "temperature": 0.7, "top_k": 7, "top_p": 0.77}
    changed |= {"max_new_tokens": 777, "guidance_scale": 1.5, "correction": 0.25}
    for name, value in changed.items():
        monkeypatch.setattr(SamplingParams.__dataclass_fields__[name], "default", value)
    args = build_parser().parse_args([command])
    assert {flag: getattr(args, flag) for flag in FLAGS} == {
        flag: changed[field] for flag, field in FLAGS.items()
    }
