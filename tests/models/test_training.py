"""Each architecture trains a few steps with the core loss on CPU; each trainable weight changes."""

from __future__ import annotations

import pytest
import torch
from editflow_core import align_batch, edit_flow_loss, make_scheduler, sample_path
from editflow_models import ARCHITECTURES, EditFlowModel, build_model_from_scratch

from .conftest import VOCAB


def core_batch(seed: int, anchor: int = 2, vocab: int = VOCAB):
    """x0 (random tokens) -> x1 pairs aligned optimally: insertions, deletions and substitutions."""
    g = torch.Generator().manual_seed(seed)
    x0s, x1s = [], []
    for n0, n1 in ((5, 9), (8, 4), (6, 7), (3, 10)):
        x0s.append([anchor, *torch.randint(5, vocab - 1, (n0,), generator=g).tolist()])
        x1s.append([anchor, *torch.randint(5, vocab - 1, (n1,), generator=g).tolist()])
    return align_batch(x0s, x1s, coupling="optimal", generator=g)


def train_steps(model: torch.nn.Module, steps: int = 3, lr: float = 1e-2) -> list[float]:
    scheduler = make_scheduler("cubic")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    model.train()
    losses = []
    for step in range(steps):
        path = sample_path(
            core_batch(step), scheduler, generator=torch.Generator().manual_seed(step)
        )
        assert path.ins_rows.numel() and path.sub_rows.numel() and (path.edit_op == 1).any()
        out = model(**path.model_inputs())
        loss = edit_flow_loss(out, path, scheduler).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def assert_all_changed(model: torch.nn.Module, before: dict[str, torch.Tensor]) -> None:
    unchanged = [
        n
        for n, p in model.named_parameters()
        if p.requires_grad and torch.equal(p.detach(), before[n])
    ]
    assert not unchanged, f"parameters that did not change: {unchanged}"


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_from_scratch_time_conditioned_trains(arch):
    torch.manual_seed(0)
    model = build_model_from_scratch(
        arch,
        vocab_size=VOCAB,
        anchor_token_id=2,
        hidden_size=32,
        num_layers=2,
        num_heads=4,
        time_conditioning=True,
    )
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    losses = train_steps(model)
    assert all(torch.isfinite(torch.tensor(losses)))
    assert any(n.startswith("time_embed.") for n in before)
    assert_all_changed(model, before)


@pytest.mark.parametrize("kind", ["modernbert", "bert", "roberta", "qwen3", "llada", "dream"])
def test_converted_trains(kind, converted):
    model = EditFlowModel.from_pretrained(converted[kind])
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    losses = train_steps(model, steps=2)
    assert all(torch.isfinite(torch.tensor(losses)))
    assert_all_changed(model, before)


@pytest.mark.parametrize("arch", ["modernbert", "qwen3"])
def test_gradient_checkpointing_gives_the_same_gradients(arch):
    torch.manual_seed(0)
    model = build_model_from_scratch(
        arch, vocab_size=VOCAB, anchor_token_id=2, hidden_size=32, num_layers=2, num_heads=4
    )
    model.train()  # both families have zero dropout by default: runs are deterministic
    path = sample_path(
        core_batch(0), make_scheduler("cubic"), generator=torch.Generator().manual_seed(0)
    )

    def grads() -> dict[str, torch.Tensor]:
        model.zero_grad()
        out = model(**path.model_inputs())
        edit_flow_loss(out, path, make_scheduler("cubic")).loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    plain = grads()
    model.activation_checkpointing_enable()
    assert model.backbone.is_activation_checkpointing
    checkpointed = grads()
    for name, g in plain.items():
        torch.testing.assert_close(checkpointed[name], g, atol=1e-6, rtol=1e-5)
