"""The --dtype option: names, conversion, loading for generation."""

from __future__ import annotations

import pytest
import torch
from editflow_models import convert
from editflow_models.dtypes import dtype_name, resolve_dtype
from editflow_models.generation import load_generation_setup
from transformers import AutoModel


@pytest.mark.parametrize(
    "name,want",
    [
        (None, "auto"),
        ("auto", "auto"),
        ("fp32", torch.float32),
        ("float32", torch.float32),
        ("bf16", torch.bfloat16),
        ("torch.bfloat16", torch.bfloat16),
        ("FP16", torch.float16),
        (torch.float16, torch.float16),
    ],
)
def test_resolve_dtype(name, want):
    assert resolve_dtype(name) == want


def test_unknown_dtype_names_the_choices():
    with pytest.raises(
        ValueError, match=r"unknown dtype 'int8'; use one of auto, fp32, bf16, fp16"
    ):
        resolve_dtype("int8")
    assert dtype_name(torch.bfloat16) == "bf16" and dtype_name(torch.float32) == "fp32"


def weight_dtypes(model) -> set[torch.dtype]:
    return {p.dtype for p in model.parameters()}


@pytest.mark.parametrize("dtype,want", [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_convert_saves_the_asked_dtype_and_auto_keeps_it(sources, tmp_path, dtype, want):
    report = convert(sources["bert"], tmp_path / "ef", anchor_token_id=2, dtype=dtype)
    assert report.dtype == want and f"bert, {want}".replace("torch.", "") in str(report)
    assert weight_dtypes(AutoModel.from_pretrained(tmp_path / "ef")) == {want}
    setup = load_generation_setup(tmp_path / "ef")  # auto: as saved
    assert weight_dtypes(setup.model) == {want}
    setup = load_generation_setup(tmp_path / "ef", dtype="fp32")
    assert weight_dtypes(setup.model) == {torch.float32}


def test_convert_refuses_an_unknown_dtype_before_writing(sources, tmp_path):
    with pytest.raises(ValueError, match="unknown dtype"):
        convert(sources["bert"], tmp_path / "ef", anchor_token_id=2, dtype="half-ish")
    assert not (tmp_path / "ef").exists()


def test_bf16_weights_sample(converted):
    from editflow_core import SamplingParams

    setup = load_generation_setup(converted["bert"], dtype="bf16")
    assert weight_dtypes(setup.model) == {torch.bfloat16}
    res = setup.sampler().generate(
        [[setup.anchor_token_id]] * 3,
        x0=[[5, 6, 7]] * 3,
        params=[SamplingParams(steps=8, seed=i, max_new_tokens=8) for i in range(3)],
    )
    V = setup.model.config.text_config.vocab_size
    for r in res:
        assert r.steps == 8 and r.forward_passes >= 1
        assert r.tokens[0] == setup.anchor_token_id and all(0 <= x < V for x in r.tokens)
