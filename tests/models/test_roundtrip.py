"""Save / load through the Auto classes: same outputs, source dtype, safetensors, no remote code."""

from __future__ import annotations

import pytest
import torch
from editflow_models import EditFlowConfig, EditFlowModel, convert
from transformers import AutoConfig, AutoModel

from .conftest import batch, tiny_mlm


@pytest.mark.parametrize(
    "kind", ["modernbert", "bert", "roberta", "qwen2", "qwen3", "llama", "llada", "dream"]
)
def test_auto_roundtrip_identical(kind, converted, tmp_path):
    model = AutoModel.from_pretrained(converted[kind]).eval()
    assert isinstance(model, EditFlowModel)
    assert isinstance(AutoConfig.from_pretrained(converted[kind]), EditFlowConfig)
    model.save_pretrained(tmp_path / "again")
    again = AutoModel.from_pretrained(tmp_path / "again").eval()
    ids, mask = batch(seed=7, vocab=99)
    with torch.no_grad():
        a, b = model(ids, mask), again(ids, mask)
    for field in ("rates", "ins_logits", "sub_logits"):
        assert torch.equal(getattr(a, field), getattr(b, field)), field


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_source_dtype_kept(dtype, tmp_path):
    source = tiny_mlm("modernbert").to(dtype)
    source.save_pretrained(tmp_path / "src")
    report = convert(tmp_path / "src", tmp_path / "ef")
    assert report.dtype == dtype
    model = AutoModel.from_pretrained(tmp_path / "ef").eval()
    assert {p.dtype for p in model.parameters()} == {dtype}
    ids, mask = batch(seed=8)
    with torch.no_grad():
        ref = source(input_ids=ids, attention_mask=mask).logits
        out = model(ids, mask)
    assert out.sub_logits.dtype == dtype
    real = mask.bool()
    assert torch.equal(out.sub_logits[real], ref[real])  # same dtype, same ops: bit-identical
    model.save_pretrained(tmp_path / "again")
    again = AutoModel.from_pretrained(tmp_path / "again").eval()
    with torch.no_grad():
        assert torch.equal(again(ids, mask).ins_logits, out.ins_logits)


def test_checkpoint_files_are_safetensors_and_self_describing(converted):
    files = {p.name for p in converted["dream"].iterdir()}
    assert "model.safetensors" in files and not any(f.endswith((".bin", ".py")) for f in files)
    config = AutoConfig.from_pretrained(converted["dream"])
    assert (config.arch, config.scheduler, config.x0, config.time_conditioning) == (
        "dream",
        "cubic",
        "empty",
        False,
    )
    assert config.text_config.model_type == "qwen2" and config.text_config.is_causal is False
    assert (
        "auto_map" not in config.to_dict()
    )  # nothing to trust: the classes ship with this package
