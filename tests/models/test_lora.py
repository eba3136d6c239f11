"""LoRA trains the new heads in full without naming them; 4-bit loading leaves them unquantised,
and keeps out (or refuses) the Linears bitsandbytes' CPU 4-bit kernel cannot take."""

from __future__ import annotations

import logging

import pytest
import torch
from editflow_models import EditFlowModel, apply_lora, load_edit_flow_model, lora_config, quiet
from editflow_models.lora import BNB_4BIT_BLOCKSIZE, BNB_CPU_4BIT_BLOCK_N, cpu_4bit_compatible
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


# (in_features, out_features): a few that fit bitsandbytes' CPU 4-bit kernel and each way to miss it
FIT = [(64, 32), (64, 64), (128, 96), (192, 64)]
MISS = [(32, 32), (96, 32), (66, 64), (64, 16), (64, 48), (33, 32), (64, 31), (1, 64), (64, 1)]


@pytest.mark.parametrize("shape", FIT + MISS, ids=lambda s: f"{s[0]}x{s[1]}")
def test_cpu_4bit_rule_is_bitsandbytes_rule(shape):
    """The rule ``load_edit_flow_model(bits=4)`` checks is exactly the one bitsandbytes' CPU
    repacking enforces; the repacking is plain torch, so this runs (and pins the rule) on any
    CPU."""
    bnb = pytest.importorskip("bitsandbytes")
    import inspect

    from bitsandbytes.functional import _convert_weight_packed_for_cpu, quantize_4bit

    params = inspect.signature(_convert_weight_packed_for_cpu).parameters
    assert params["block_n"].default == BNB_CPU_4BIT_BLOCK_N
    assert bnb.nn.Params4bit(torch.zeros(2, 2)).blocksize == BNB_4BIT_BLOCKSIZE
    k, n = shape
    weight = torch.randn(n, k)
    q, state = quantize_4bit(weight, blocksize=BNB_4BIT_BLOCKSIZE, quant_type="nf4")
    try:
        _convert_weight_packed_for_cpu(q, state)
        packs = True
    except (AssertionError, RuntimeError):
        packs = False
    assert packs == cpu_4bit_compatible(k, n) == (shape in FIT)


def _our_records(caplog) -> list[logging.LogRecord]:
    """Our warnings, less the bitsandbytes start-up note (``_bnb_notes``)."""
    return [
        r
        for r in caplog.records
        if r.name == "editflow_models.lora" and r not in _bnb_notes(caplog)
    ]


def _bnb_notes(caplog) -> list[logging.LogRecord]:
    """bitsandbytes' start-up message, held back by editflow_models.quiet, shown on 4-bit loads."""
    return [
        r
        for r in caplog.records
        if r.name == "editflow_models.lora" and r.getMessage().startswith("bitsandbytes: ")
    ]


def _backbone_linears(model):
    return {n: m for n, m in model.backbone.named_modules() if isinstance(m, nn.Linear)}


def test_4bit_keeps_new_modules_unquantised_and_trains(converted_4bit, caplog):
    bnb = pytest.importorskip("bitsandbytes")
    with caplog.at_level(logging.WARNING, logger="editflow_models.lora"):
        model = load_edit_flow_model(converted_4bit, bits=4)
    assert not _our_records(caplog)  # every backbone Linear fits the CPU rule: nothing skipped
    # what editflow_models.quiet held back at start-up is shown to whoever quantises
    assert len(_bnb_notes(caplog)) == len(set(quiet.held_back(quiet.BNB_MESSAGE)))
    linears = _backbone_linears(model)
    assert linears and all(isinstance(m, bnb.nn.Linear4bit) for m in linears.values())
    for head in ("ins_head", "sub_head"):
        decoder = getattr(model, head).decoder
        assert type(decoder) is nn.Linear and decoder.weight.dtype in (
            torch.float32,
            torch.bfloat16,
        )
    assert type(model.rate_head) is nn.Linear
    reference = EditFlowModel.from_pretrained(converted_4bit).eval()
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


def _lora_grads(peft_model, ids, mask) -> dict[str, torch.Tensor]:
    peft_model.train()
    peft_model.zero_grad()
    out = peft_model(ids, mask)
    loss = out.sub_logits.float().logsumexp(-1).mean() + out.rates.float().mean()
    loss.backward()
    return {
        n: p.grad.detach().clone()
        for n, p in peft_model.named_parameters()
        if p.requires_grad and p.grad is not None
    }


def test_4bit_gradients_survive_an_inference_pass(converted_4bit):
    """On AVX512-BF16 CPUs bitsandbytes repacks a 4-bit weight on its first inference call and
    its packed kernel has no backward (the LoRA gradients behind any quantised Linear come out
    zero); training after an eval pass must get the same weights and gradients as before it
    (``_unpack_cpu_4bit_for_grad``)."""
    bnb = pytest.importorskip("bitsandbytes")
    from bitsandbytes.functional import dequantize_4bit, has_avx512bf16

    peft_model = apply_lora(load_edit_flow_model(converted_4bit, bits=4), r=4)
    layers = {n: m for n, m in peft_model.named_modules() if isinstance(m, bnb.nn.Linear4bit)}
    weights = {n: dequantize_4bit(m.weight.data, m.weight.quant_state) for n, m in layers.items()}
    ids = torch.randint(5, 90, (2, 8))
    mask = torch.ones_like(ids)
    before = _lora_grads(peft_model, ids, mask)
    assert sum(".backbone.layers.0." in n for n in before) > 0
    peft_model.eval()
    with torch.no_grad():
        peft_model(ids, mask)
    if has_avx512bf16():  # the repacking really happened, so the guard is what is tested
        assert all(m.weight.quant_state.packing_format_for_cpu for m in layers.values())
    after = _lora_grads(peft_model, ids, mask)
    for n, m in layers.items():
        assert not getattr(m.weight.quant_state, "packing_format_for_cpu", False), n
        w = dequantize_4bit(m.weight.data, m.weight.quant_state)
        # the same weight, up to the bf16 rounding of the block scales one pack / unpack leaves
        assert (w.float() - weights[n].float()).norm() < 0.01 * weights[n].float().norm(), n
    assert after.keys() == before.keys()
    for n, g in before.items():
        assert (after[n] - g).norm() <= 0.05 * g.norm(), n


def test_4bit_too_narrow_layers_stay_unquantised_with_a_warning(converted, caplog):
    """Hidden size 32: every Linear reading the hidden state misses the CPU rule (in_features
    % 64); only the MLP down projections (64 -> 32) are quantised. No crash inside bitsandbytes."""
    bnb = pytest.importorskip("bitsandbytes")
    with caplog.at_level(logging.WARNING, logger="editflow_models.lora"):
        model = load_edit_flow_model(converted["qwen3"], bits=4)
    records = _our_records(caplog)
    assert len(records) == 1
    message = records[0].getMessage()
    assert "in_features % 64 == 0 and out_features % 32 == 0" in message
    assert "keeping 12 of 14 backbone Linears unquantised" in message
    assert "backbone.layers.*.self_attn.q_proj (in 32, out 32) x2" in message
    assert "down_proj" not in message
    linears = _backbone_linears(model)
    for name, module in linears.items():
        quantised = isinstance(module, bnb.nn.Linear4bit)
        assert quantised == name.endswith("down_proj"), name
        assert quantised == cpu_4bit_compatible(module.in_features, module.out_features)
    ids = torch.randint(5, 90, (2, 8))
    with torch.no_grad():
        out = model.eval()(ids, torch.ones_like(ids))
    assert torch.isfinite(out.sub_logits.float()).all()
    peft_model = apply_lora(model, r=4)
    assert all(torch.isfinite(torch.tensor(train_steps(peft_model, steps=2))))


def test_4bit_refused_when_no_layer_fits(tmp_path):
    pytest.importorskip("bitsandbytes")
    from editflow_models import build_model_from_scratch

    model = build_model_from_scratch(
        "qwen3",
        vocab_size=99,
        anchor_token_id=2,
        hidden_size=48,
        num_layers=1,
        num_heads=4,
        intermediate_size=96,
        time_conditioning=False,
    )
    model.save_pretrained(tmp_path / "narrow")
    with pytest.raises(ValueError, match=r"none of the 7 backbone Linears.*in_features % 64 == 0"):
        load_edit_flow_model(tmp_path / "narrow", bits=4)


def test_8bit_has_no_cpu_shape_rule(converted):
    bnb = pytest.importorskip("bitsandbytes")
    model = load_edit_flow_model(converted["qwen3"], bits=8)
    linears = _backbone_linears(model)
    assert linears and all(isinstance(m, bnb.nn.Linear8bitLt) for m in linears.values())
    ids = torch.randint(5, 90, (2, 8))
    with torch.no_grad():
        out = model.eval()(ids, torch.ones_like(ids))
    assert torch.isfinite(out.sub_logits.float()).all()
