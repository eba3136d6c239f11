"""The forward protocol: shapes, row gathering, time conditioning, errors."""

from __future__ import annotations

import pytest
import torch
from editflow_core import BatchSampler, RateModel, RatesFirstModel, SamplingParams, make_scheduler
from editflow_models import (
    ARCHITECTURES,
    EditFlowModel,
    EditFlowModelOutput,
    build_model_from_scratch,
)

from .conftest import batch


def _scratch(arch: str, time_conditioning: bool = False, seed: int = 0) -> EditFlowModel:
    torch.manual_seed(seed)
    model = build_model_from_scratch(
        arch,
        vocab_size=99,
        anchor_token_id=2,
        hidden_size=32,
        num_layers=2,
        num_heads=4,
        time_conditioning=time_conditioning,
    )
    return model.eval()


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_rows_gather_equals_full_logits_rows(arch):
    model = _scratch(arch)
    ids, mask = batch(seed=6)
    B, L = ids.shape
    ins_rows = torch.tensor([0, 3, L + 1, 2 * L + 5, 2 * L + 10])
    sub_rows = torch.tensor([1, L + 4, 2 * L + 2])
    with torch.no_grad():
        full = model(ids, mask, torch.full((B,), 0.5))
        part = model(ids, mask, torch.full((B,), 0.5), ins_rows=ins_rows, sub_rows=sub_rows)
    assert full.ins_logits.shape == (B, L, 99) and part.ins_logits.shape == (5, 99)
    torch.testing.assert_close(
        part.ins_logits, full.ins_logits.flatten(0, 1)[ins_rows], atol=1e-6, rtol=0
    )
    torch.testing.assert_close(
        part.sub_logits, full.sub_logits.flatten(0, 1)[sub_rows], atol=1e-6, rtol=0
    )
    torch.testing.assert_close(part.rates, full.rates)
    assert part.rates.shape == (B, L, 3) and (part.rates >= 0).all()


def test_empty_rows_give_empty_logits():
    model = _scratch("modernbert")
    ids, mask = batch()
    out = model(
        ids,
        mask,
        ins_rows=torch.empty(0, dtype=torch.long),
        sub_rows=torch.empty(0, dtype=torch.long),
    )
    assert out.ins_logits.shape == (0, 99) and out.sub_logits.shape == (0, 99)


def test_output_is_a_model_output_with_protocol_fields():
    model = _scratch("bert")
    ids, mask = batch()
    out = model(ids, mask)
    assert isinstance(out, EditFlowModelOutput)
    assert out["rates"] is out.rates and len(out.to_tuple()) == 3
    assert isinstance(model, torch.nn.Module) and callable(model)
    protocol_args = list(RateModel.__call__.__code__.co_varnames[1:6])
    assert list(model.forward.__code__.co_varnames[1:6]) == protocol_args


def test_time_conditioning():
    model = _scratch("qwen3", time_conditioning=True)
    assert model.time_conditioned
    ids, mask = batch()
    t0, t1 = torch.zeros(3), torch.full((3,), 0.9)
    with torch.no_grad():
        # the time MLP's last layer starts at zero: t has no effect until trained
        torch.testing.assert_close(model(ids, mask, t0).rates, model(ids, mask, t1).rates)
        model.time_embed.mlp[2].weight.normal_()
        assert (model(ids, mask, t0).rates - model(ids, mask, t1).rates).abs().max() > 1e-4
    with pytest.raises(ValueError, match="needs t of shape"):
        model(ids, mask)


def test_untimed_model_ignores_t():
    model = _scratch("modernbert", time_conditioning=False)
    assert not model.time_conditioned and model.time_embed is None
    ids, mask = batch()
    with torch.no_grad():
        torch.testing.assert_close(
            model(ids, mask, torch.zeros(3)).sub_logits, model(ids, mask, torch.ones(3)).sub_logits
        )


def test_padding_does_not_change_real_positions():
    model = _scratch("modernbert")
    ids, mask = batch(lengths=(6,))
    padded = torch.cat([ids, torch.zeros(1, 5, dtype=torch.long)], 1)
    padded_mask = torch.cat([mask, torch.zeros(1, 5, dtype=torch.long)], 1)
    with torch.no_grad():
        a, b = model(ids, mask), model(padded, padded_mask)
    torch.testing.assert_close(b.sub_logits[:, :6], a.sub_logits, atol=1e-5, rtol=1e-5)


def test_bad_shapes_raise():
    model = _scratch("bert")
    ids, mask = batch()
    with pytest.raises(ValueError, match=r"input_ids must be \(B, L\)"):
        model(ids[0], mask[0])
    with pytest.raises(ValueError, match="attention_mask shape"):
        model(ids, mask[:, :-1])
    with pytest.raises(ValueError, match=r"rows must be \(N,\)"):
        model(ids, mask, ins_rows=torch.zeros(2, 2, dtype=torch.long))


@pytest.mark.parametrize("arch", ["modernbert", "dream"])
def test_forward_rates_matches_forward(arch):
    model = _scratch(arch, time_conditioning=True)
    assert isinstance(model, RatesFirstModel)
    ids, mask = batch(seed=9)
    t = torch.full((3,), 0.4)
    rows_ins, rows_sub = torch.tensor([0, 13, 25]), torch.tensor([2, 14])
    with torch.no_grad():
        full = model(ids, mask, t)
        first = model.forward_rates(ids, mask, t)
        ins, sub = first.token_logits(rows_ins, rows_sub)
    torch.testing.assert_close(first.rates, full.rates)
    torch.testing.assert_close(ins, full.ins_logits.flatten(0, 1)[rows_ins], atol=1e-6, rtol=0)
    torch.testing.assert_close(sub, full.sub_logits.flatten(0, 1)[rows_sub], atol=1e-6, rtol=0)


def test_core_sampler_drives_the_model():
    model = _scratch("modernbert")
    sampler = BatchSampler(model, make_scheduler("cubic"), pad_token_id=0, max_length=32)
    results = sampler.generate([[2], [2, 7, 8]], params=[SamplingParams(steps=8, seed=0)] * 2)
    assert [r.tokens[: len(p)] for r, p in zip(results, [[2], [2, 7, 8]])] == [[2], [2, 7, 8]]
    assert all(len(r.tokens) <= 32 and r.forward_passes >= 1 for r in results)
    assert (
        sum(r.n_ins for r in results) > 0
    )  # an untrained model still inserts at rate ~softplus(0)


@pytest.mark.parametrize("arch", ["modernbert", "bert", "qwen3"])
def test_sampler_batch_equals_solo_with_per_row_reuse(arch):
    """Rows recomputed in sub-batches of other widths still give each sequence its solo result."""
    model = _scratch(arch)
    prompts = [[2], [2, 7, 8, 9], [2, 5], [2, 11, 12]]
    x0 = [[3] * 4, [3] * 2, [], [3] * 6]
    params = [SamplingParams(steps=12, seed=i, max_new_tokens=16) for i in range(4)]
    widths = []
    real_forward = model.forward_rates

    def spy(input_ids, attention_mask, t):
        widths.append(tuple(input_ids.shape))
        return real_forward(input_ids, attention_mask, t)

    model.forward_rates = spy
    batch = BatchSampler(model, make_scheduler("cubic")).generate(prompts, x0, params)
    assert any(b < 4 for b, _ in widths)  # some steps recomputed only the rows that changed
    for i in range(4):
        (alone,) = BatchSampler(model, make_scheduler("cubic")).generate(
            [prompts[i]], [x0[i]], [params[i]]
        )
        assert alone.tokens == batch[i].tokens
        assert alone.forward_passes == batch[i].forward_passes
