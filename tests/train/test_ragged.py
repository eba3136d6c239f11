"""Ragged batches (``max_tokens_per_forward``) through the collator and the trainer's loss: the
same loss and gradients as one padded forward, for every architecture we ship."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch
from editflow_core import make_scheduler, make_x0_sampler
from editflow_models import ARCHITECTURES, build_model_from_scratch
from editflow_train import EditFlowCollator, EditFlowTrainer

from .conftest import run_cli, tiny_pt_config, write_config

V, PAD, BOS, MASK = 40, 0, 1, 3


def collate(x0: str, budget: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    examples = [
        {"input_ids": [BOS, *torch.randint(5, V, (n,), generator=g).tolist()], "frozen": 1}
        for n in (3, 30, 12, 7, 25, 18, 1, 9)
    ]
    collator = EditFlowCollator(
        x0_sampler=make_x0_sampler(x0),
        scheduler=make_scheduler("cubic"),
        pad_token_id=PAD,
        mask_token_id=MASK,
        vocab_size=V,
        coupling="noise",
        max_tokens_per_forward=budget,
    )
    torch.manual_seed(seed)  # the collator draws from the global generator, as in a worker
    return collator(examples)


def loss_and_grads(model, inputs):
    trainer = SimpleNamespace(
        scheduler=make_scheduler("cubic"),
        normalize="batch_tokens",
        max_weight=20.0,
        _sums={"train": defaultdict(float), "eval": defaultdict(float)},
    )
    model.zero_grad()
    loss = EditFlowTrainer.compute_loss(trainer, model, inputs)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return float(loss.detach()), grads, trainer._sums["eval"]  # an eval-mode model


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("x0", ["empty", "masks[length:4-24]"])
def test_ragged_batches_give_the_padded_loss_and_gradients(arch, x0):
    torch.manual_seed(0)
    model = build_model_from_scratch(
        arch,
        vocab_size=V,
        anchor_token_id=BOS,
        hidden_size=32,
        num_layers=2,
        num_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        mask_token_id=MASK,
        pad_token_id=PAD,
    ).eval()  # no dropout: the two runs must see the same function
    padded = collate(x0, 0)
    ragged = collate(x0, 64)
    assert len(ragged["groups"]) > 1
    assert sum(g["x_t"].numel() for g in ragged["groups"]) < padded["x_t"].numel()
    want, want_grads, want_sums = loss_and_grads(model, padded)
    got, grads, sums = loss_and_grads(model, ragged)
    assert got == pytest.approx(want, rel=1e-4)
    assert grads.keys() == want_grads.keys()
    for name, grad in grads.items():
        torch.testing.assert_close(grad, want_grads[name], rtol=2e-3, atol=1e-5, msg=name)
    # the logged parts and counts are the batch's too
    assert sums["tokens"] == want_sums["tokens"] and sums["batches"] == want_sums["batches"] == 1
    for key in ("n_ins", "n_del", "n_sub"):
        assert sums[key] == want_sums[key]
    assert sums["outflow"] == pytest.approx(want_sums["outflow"], rel=1e-4)


def test_budget_below_max_length_is_refused(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", tiny_pt_config(tmp_path / "run"))
    result = run_cli(["pt", "--config", str(cfg), "--max_tokens_per_forward", "16"])
    assert result.returncode == 2
    assert "--max_tokens_per_forward must be 0 (off) or at least max_length (32), got 16" in (
        result.stderr
    )
