"""LoRA trains the new heads in full without naming them; 4-bit loading leaves them unquantised."""

from __future__ import annotations

import pytest
import torch
from editflow_models import EditFlowModel, apply_lora, load_model, lora_config
from torch import nn

from .test_training import assert_all_changed, train_steps


@pytest.mark.parametrize("kind", ["bert", "qwen3"])
def test_lora_targets_backbone_and_saves_new_modules(kind, converted):
    model = EditFlowModel.from_pretrained(converted[kind])
    config = lora_config(model, r=4)
    assert set(config.modules_to_save) == {"ins_head", "sub_head", "rate_head"}
    head_sizes = {
        h: sum(1 for n, _ in model.named_parameters() if n.startswith(f"{h}."))
        for h in config.modules_to_save
    }
    peft_model = apply_lora(model, r=4)
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or "modules_to_save" in n for n in trainable)
    # every parameter of the new heads is trainable in full; LoRA sits only inside the backbone
    for head in ("ins_head", "sub_head", "rate_head"):
        head_params = [n for n in trainable if f"{head}.modules_to_save" in n]
        assert len(head_params) == head_sizes[head]
    assert all(".backbone." in n for n in trainable if "lora_" in n)
    frozen_before = {
        n: p.detach().clone() for n, p in peft_model.named_parameters() if not p.requires_grad
    }
    before = {n: p.detach().clone() for n, p in peft_model.named_parameters()}
    train_steps(peft_model, steps=2)
    assert_all_changed(peft_model, before)
    for n, p in peft_model.named_parameters():
        if n in frozen_before:
            assert torch.equal(p, frozen_before[n]), n


def test_time_embed_is_saved_when_present(sources, tmp_path):
    from editflow_models import convert

    convert(sources["bert"], tmp_path / "t", time_conditioning=True)
    model = EditFlowModel.from_pretrained(tmp_path / "t")
    assert "time_embed" in lora_config(model).modules_to_save


def test_4bit_keeps_new_modules_unquantised_and_trains(converted):
    bnb = pytest.importorskip("bitsandbytes")
    model = load_model(converted["qwen3"], bits=4)
    assert isinstance(model.backbone.layers[0].self_attn.q_proj, bnb.nn.Linear4bit)
    for head in ("ins_head", "sub_head"):
        decoder = getattr(model, head).decoder
        assert type(decoder) is nn.Linear and decoder.weight.dtype in (
            torch.float32,
            torch.bfloat16,
        )
    assert type(model.rate_head) is nn.Linear
    reference = EditFlowModel.from_pretrained(converted["qwen3"]).eval()
    ids = torch.randint(5, 90, (2, 8))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        q = model.eval()(ids, mask).sub_logits.float()
        ref = reference(ids, mask).sub_logits
    assert torch.isfinite(q).all()
    # quantised, but still the same function (NF4 error is small next to the logits' spread)
    assert torch.corrcoef(torch.stack([q.flatten(), ref.flatten()]))[0, 1] > 0.9
    peft_model = apply_lora(model, r=4)
    before = {n: p.detach().clone() for n, p in peft_model.named_parameters() if p.requires_grad}
    train_steps(peft_model, steps=2)
    changed = [
        n
        for n, p in peft_model.named_parameters()
        if p.requires_grad and not torch.equal(p.detach(), before[n])
    ]
    assert len(changed) == len(before)
