"""Qwen2 / Qwen3 / Llama made bidirectional: same function under a causal mask, bidirectional
otherwise, padding-invariant, and never silently causal."""

from __future__ import annotations

import pytest
import torch
from editflow_models import EditFlowModel, a2d, convert
from transformers import AutoModelForCausalLM

from .conftest import CAUSAL_KINDS, batch

ATTN = ("sdpa", "eager")


@pytest.mark.parametrize("kind", CAUSAL_KINDS)
def test_causal_mask_forced_equals_stock_causal_model(kind, sources, converted):
    stock = AutoModelForCausalLM.from_pretrained(sources[kind]).eval()
    model = EditFlowModel.from_pretrained(converted[kind]).eval()
    ids, _ = batch(seed=2, lengths=(10, 10))
    L = ids.shape[1]
    causal = torch.ones(L, L, dtype=torch.bool).tril()[None, None].expand(len(ids), 1, L, L)
    with torch.no_grad():
        ref = stock(input_ids=ids).logits
        hidden = model.backbone(input_ids=ids, attention_mask=causal).last_hidden_state
        bidirectional = model(ids, torch.ones_like(ids)).sub_logits
    torch.testing.assert_close(model.sub_head(hidden), ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(model.ins_head(hidden), ref, atol=1e-5, rtol=0)
    # without the forced mask the model is not the causal one
    assert (bidirectional[:, :-1] - ref[:, :-1]).abs().max() > 1e-3


@pytest.mark.parametrize("attn", ATTN)
@pytest.mark.parametrize("kind", CAUSAL_KINDS)
def test_later_token_changes_first_position(kind, attn, sources, converted):
    model = EditFlowModel.from_pretrained(converted[kind], attn_implementation=attn).eval()
    stock = AutoModelForCausalLM.from_pretrained(sources[kind], attn_implementation=attn).eval()
    ids, mask = batch(seed=3, lengths=(8,))
    changed = ids.clone()
    changed[0, -1] = (ids[0, -1] + 1) % 90 + 5
    with torch.no_grad():
        a, b = model(ids, mask), model(changed, mask)
        sa, sb = stock(input_ids=ids).logits, stock(input_ids=changed).logits
    assert (a.sub_logits[0, 0] - b.sub_logits[0, 0]).abs().max() > 1e-4
    assert (a.rates[0, 0] - b.rates[0, 0]).abs().max() > 1e-6
    torch.testing.assert_close(sa[0, 0], sb[0, 0])  # the stock model is causal: the check can fail


@pytest.mark.parametrize("attn", ATTN)
@pytest.mark.parametrize("kind", CAUSAL_KINDS)
def test_invariant_to_padding_side_and_batch_composition(kind, attn, converted):
    model = EditFlowModel.from_pretrained(converted[kind], attn_implementation=attn).eval()
    g = torch.Generator().manual_seed(4)
    short, long_ = torch.randint(5, 98, (7,), generator=g), torch.randint(5, 98, (11,), generator=g)
    with torch.no_grad():
        alone = model(short[None], torch.ones(1, 7, dtype=torch.long))
        right_ids = torch.stack([torch.cat([short, torch.zeros(4, dtype=torch.long)]), long_])
        right_mask = (right_ids != 0).long()
        right_mask[0, 7:] = 0
        right_mask[1] = 1
        right = model(right_ids, right_mask)
        left_ids = torch.stack([torch.cat([torch.zeros(4, dtype=torch.long), short]), long_])
        left_mask = torch.ones_like(left_ids)
        left_mask[0, :4] = 0
        left = model(left_ids, left_mask)
    for field in ("rates", "ins_logits", "sub_logits"):
        ref = getattr(alone, field)[0]
        torch.testing.assert_close(getattr(right, field)[0, :7], ref, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(getattr(left, field)[0, 4:], ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", CAUSAL_KINDS)
def test_flash_attention_is_refused(kind, converted):
    model = EditFlowModel.from_pretrained(converted[kind])
    ids, mask = batch(lengths=(5,))
    model.backbone.config._attn_implementation = "flash_attention_2"
    with pytest.raises(ValueError, match="flash_attention_2.*would keep this .* backbone causal"):
        model(ids, mask)
    config = model.config
    config.text_config._attn_implementation = "flash_attention_2"
    with pytest.raises(ValueError, match="causal"):
        EditFlowModel(config)


def test_encoders_accept_any_attention(converted):
    # the flash check is only for decoders made bidirectional through their mask
    model = EditFlowModel.from_pretrained(converted["bert"], attn_implementation="eager")
    ids, mask = batch(lengths=(5,))
    assert model(ids, mask).rates.shape == (1, 5, 3)


@pytest.mark.parametrize("kind", CAUSAL_KINDS)
def test_a2d_saves_same_weights_bidirectional(kind, sources, tmp_path):
    out = a2d(sources[kind], tmp_path / "a2d")
    stock = AutoModelForCausalLM.from_pretrained(sources[kind]).eval()
    bidi = AutoModelForCausalLM.from_pretrained(out).eval()
    assert type(bidi) is type(stock) and bidi.config.is_causal is False
    ref = stock.state_dict()
    for name, value in bidi.state_dict().items():
        assert torch.equal(value, ref[name]), name
    ids, _ = batch(seed=5, lengths=(8,))
    changed = ids.clone()
    changed[0, -1] = (ids[0, -1] + 1) % 90 + 5
    with torch.no_grad():
        assert (
            bidi(input_ids=ids).logits[0, 0] - bidi(input_ids=changed).logits[0, 0]
        ).abs().max() > 1e-4
    # and it converts like its causal source
    report = convert(out, tmp_path / "ef", anchor_token_id=1)
    assert report.arch == kind


def test_a2d_refuses_other_architectures(sources, tmp_path):
    with pytest.raises(ValueError, match="a2d needs a causal qwen2, qwen3, llama checkpoint"):
        a2d(sources["bert"], tmp_path / "x")
