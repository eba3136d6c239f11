"""Conversion keeps what the source knows: parity with the source MLM, weights, report, errors."""

from __future__ import annotations

import json

import pytest
import torch
from editflow_models import EditFlowModel, convert
from transformers import AutoModelForMaskedLM

from .conftest import MLM_KINDS, batch


def _real(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return x[mask.bool()]


@pytest.mark.parametrize("kind", MLM_KINDS)
def test_token_distributions_equal_source_mlm(kind, sources, converted):
    source = AutoModelForMaskedLM.from_pretrained(sources[kind]).eval()
    model = EditFlowModel.from_pretrained(converted[kind]).eval()
    ids, mask = batch(seed=1)
    with torch.no_grad():
        ref = source(input_ids=ids, attention_mask=mask).logits.log_softmax(-1)
        out = model(ids, mask, torch.zeros(len(ids)))
    for logits in (out.ins_logits, out.sub_logits):
        torch.testing.assert_close(
            _real(logits.log_softmax(-1), mask), _real(ref, mask), atol=1e-5, rtol=0
        )
    assert (out.rates >= 0).all() and out.rates.shape == (*ids.shape, 3)


@pytest.mark.parametrize("kind", MLM_KINDS)
def test_backbone_weights_equal_source(kind, sources, converted):
    source = AutoModelForMaskedLM.from_pretrained(sources[kind])
    model = EditFlowModel.from_pretrained(converted[kind])
    src_backbone = source.base_model.state_dict()
    ours = model.backbone.state_dict()
    assert set(ours) == set(src_backbone)
    for name, value in src_backbone.items():
        assert torch.equal(ours[name], value), name


@pytest.mark.parametrize("kind", MLM_KINDS)
def test_parameter_count_is_source_backbone_plus_two_heads_plus_rate_head(kind, sources, converted):
    source = AutoModelForMaskedLM.from_pretrained(sources[kind])
    model = EditFlowModel.from_pretrained(converted[kind])
    H, V = source.config.hidden_size, source.config.vocab_size
    decoder = source.get_output_embeddings()
    head_module = getattr(source, {"modernbert": "head", "bert": "cls", "roberta": "lm_head"}[kind])
    # the source head counted in full: its transform, its decoder weight (even when tied), its bias
    transform = sum(
        p.numel()
        for n, p in head_module.named_parameters()
        if "decoder" not in n and n not in ("bias", "predictions.bias")
    )
    n_head = transform + H * V + (V if decoder.bias is not None else 0)
    expected = source.base_model.num_parameters() + 2 * n_head + (3 * H + 3)
    assert model.num_parameters() == expected
    assert {n.split(".")[0] for n, _ in model.named_parameters()} == {
        "backbone",
        "ins_head",
        "sub_head",
        "rate_head",
    }


def test_token_heads_are_untied_copies(converted):
    model = EditFlowModel.from_pretrained(converted["bert"])
    emb = model.get_input_embeddings().weight
    ins, sub = model.ins_head.decoder.weight, model.sub_head.decoder.weight
    assert torch.equal(ins, emb) and torch.equal(sub, emb)  # BERT ties its decoder to the embedding
    assert len({ins.data_ptr(), sub.data_ptr(), emb.data_ptr()}) == 3
    with torch.no_grad():
        model.ins_head.decoder.weight.add_(1.0)
    assert not torch.equal(model.ins_head.decoder.weight, emb)
    assert torch.equal(model.sub_head.decoder.weight, emb)


def test_report_lists_copied_and_new_and_saves_tokenizer(sources, tmp_path):
    report = convert(sources["bert"], tmp_path / "out")
    text = str(report)
    assert "backbone <- source backbone" in text and "ins_head <- source LM head" in text
    assert "rate_head: Linear(32, 3)" in text
    assert report.tokenizer == "BertTokenizer"
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    # ids come from the tokenizer beside the source: [CLS]=2, [MASK]=4, [PAD]=0
    assert (config["anchor_token_id"], config["mask_token_id"], config["pad_token_id"]) == (2, 4, 0)
    assert (config["model_type"], config["arch"], config["time_conditioning"]) == (
        "editflow",
        "bert",
        False,
    )
    files = {p.name for p in (tmp_path / "out").iterdir()}
    assert "model.safetensors" in files and "tokenizer.json" in files
    assert not any(name.endswith((".bin", ".pt")) for name in files)


def test_spec_strings_stored(sources, tmp_path):
    report = convert(
        sources["modernbert"],
        tmp_path / "o",
        scheduler="poly[n:2]",
        x0="masks[length:8]",
        mask_token_id=4,
    )
    config = json.loads((report.output / "config.json").read_text())
    assert (config["scheduler"], config["x0"], config["mask_token_id"]) == (
        "poly[n:2]",
        "masks[length:8]",
        4,
    )


def test_unsupported_architecture_lists_supported(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    GPT2LMHeadModel(GPT2Config(n_embd=16, n_layer=1, n_head=2, vocab_size=50)).save_pretrained(
        tmp_path / "gpt2"
    )
    with pytest.raises(
        ValueError,
        match=r"unsupported architecture 'gpt2'.*modernbert, bert, roberta.*qwen3.*llada, Dream",
    ):
        convert(tmp_path / "gpt2", tmp_path / "out")


def test_editflow_checkpoint_and_missing_source_refused(converted, tmp_path):
    with pytest.raises(ValueError, match="already an Edit Flow checkpoint"):
        convert(converted["bert"], tmp_path / "again")
    with pytest.raises(ValueError, match="not a local directory.*HF_HUB_OFFLINE"):
        convert("no-such-org/no-such-model", tmp_path / "x")


def test_ids_from_source_config_without_tokenizer(sources, tmp_path):
    # no tokenizer files beside the RoBERTa source: ids come from its config (bos 0, pad 1)
    report = convert(sources["roberta"], tmp_path / "r")
    assert report.tokenizer is None
    assert (report.config["anchor_token_id"], report.config["pad_token_id"]) == (0, 1)
    assert not (tmp_path / "r" / "tokenizer.json").exists()


def test_missing_anchor_is_an_error(tmp_path):
    from .conftest import tiny_causal

    model = tiny_causal("llama")
    model.config.bos_token_id = None
    model.save_pretrained(tmp_path / "src")
    with pytest.raises(ValueError, match="pass anchor_token_id"):
        convert(tmp_path / "src", tmp_path / "out")
    assert (
        convert(tmp_path / "src", tmp_path / "out", anchor_token_id=5).config["anchor_token_id"]
        == 5
    )
