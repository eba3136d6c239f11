"""LLaDA and Dream conversion, checked against stand-ins with their structure.

Their hub code cannot be downloaded here, so the stand-ins (tests/models/standins.py) reproduce
its layout, names and math.
"""

from __future__ import annotations

import json

import pytest
import torch
from editflow_models import EditFlowModel, convert

from .standins import DreamStandin, LLaDAStandin


def _ids(vocab: int, L: int = 9, B: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, vocab - 1, (B, L), generator=g)
    ids[:, 0] = 1
    return ids


def test_llada_equals_standin(converted):
    torch.manual_seed(0)
    standin = LLaDAStandin().eval()  # same seed as the saved source
    model = EditFlowModel.from_pretrained(converted["llada"]).eval()
    ids = _ids(101)
    with torch.no_grad():
        ref = standin(ids)
        out = model(ids, torch.ones_like(ids))
    # no shift: row i predicts token i (sub) and the token after i (ins) from the same state
    torch.testing.assert_close(out.sub_logits, ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.ins_logits, ref, atol=1e-5, rtol=0)
    assert (model.config.mask_token_id, model.config.pad_token_id) == (
        100,
        0,
    )  # from its config.json
    assert model.config.text_config.model_type == "llama"


def test_dream_equals_standin_with_shift(converted):
    torch.manual_seed(0)
    standin = DreamStandin().eval()
    model = EditFlowModel.from_pretrained(converted["dream"]).eval()
    ids = _ids(103)
    with torch.no_grad():
        ref = standin(ids)  # unshifted: row i predicts token i + 1
        out = model(ids, torch.ones_like(ids))
    # substitution of token i reads the state at i - 1 (Dream's convention); position 0 its own
    torch.testing.assert_close(out.sub_logits[:, 1:], ref[:, :-1], atol=1e-5, rtol=0)
    torch.testing.assert_close(out.sub_logits[:, 0], ref[:, 0], atol=1e-5, rtol=0)
    # insertion after i (the new token i + 1) reads the state at i
    torch.testing.assert_close(out.ins_logits, ref, atol=1e-5, rtol=0)
    assert model.config.mask_token_id == 102


def test_dream_deletion_and_substitution_rates_are_shifted(converted):
    model = EditFlowModel.from_pretrained(converted["dream"]).eval()
    ids = _ids(103, L=7)
    with torch.no_grad():
        out = model(ids, torch.ones_like(ids))
        hidden = model.backbone(input_ids=ids).last_hidden_state
        raw = torch.nn.functional.softplus(model.rate_head(hidden))  # unshifted, (B, L, 3)
    torch.testing.assert_close(out.rates[..., 0], raw[..., 0])
    torch.testing.assert_close(out.rates[:, 1:, 1:], raw[:, :-1, 1:])
    torch.testing.assert_close(out.rates[:, 0, 1:], raw[:, 0, 1:])


def test_dream_rows_gather_follows_the_shift(converted):
    model = EditFlowModel.from_pretrained(converted["dream"]).eval()
    ids = _ids(103, L=6, B=3)
    rows = torch.tensor([0, 4, 6, 11, 17])
    with torch.no_grad():
        full = model(ids, torch.ones_like(ids))
        part = model(ids, torch.ones_like(ids), ins_rows=rows, sub_rows=rows)
    torch.testing.assert_close(part.sub_logits, full.sub_logits.flatten(0, 1)[rows])
    torch.testing.assert_close(part.ins_logits, full.ins_logits.flatten(0, 1)[rows])


def test_unsupported_llada_config_refused(tmp_path):
    torch.manual_seed(0)
    src = LLaDAStandin().save(tmp_path / "src")
    cfg = json.loads((src / "config.json").read_text())
    cfg["include_qkv_bias"] = True
    (src / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="unsupported LLaDA config.*include_qkv_bias"):
        convert(src, tmp_path / "out")
