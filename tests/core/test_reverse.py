"""Reverse rates (self-correction): the switched columns as reverse edits, and the reverse loss,
against references written from their definitions."""

import math

import pytest
import torch
from editflow_core import (
    BLANK,
    DEL,
    INS,
    SUB,
    align_batch,
    make_scheduler,
    reverse_flow_loss,
    sample_path,
)

V = 11


def random_batch(seed):
    g = torch.Generator().manual_seed(seed)
    x0s, x1s, frozen = [], [], []
    for _ in range(4):
        f = int(torch.randint(1, 3, (1,), generator=g))
        prefix = torch.randint(1, V, (f,), generator=g).tolist()
        x0s.append(
            prefix
            + torch.randint(
                1, V, (int(torch.randint(0, 7, (1,), generator=g)),), generator=g
            ).tolist()
        )
        x1s.append(
            prefix
            + torch.randint(
                1, V, (int(torch.randint(0, 7, (1,), generator=g)),), generator=g
            ).tolist()
        )
        frozen.append(f)
    return align_batch(x0s, x1s, frozen, coupling="optimal", generator=g), g


def reference_reverse_edits(batch, switched):
    """(row, x_t position, op) of every switched non-keep column, by walking the columns."""
    out = []
    for b in range(batch.z0.shape[0]):
        f = int(batch.frozen[b])
        before = 0
        for j in range(batch.z0.shape[1]):
            a, c = int(batch.z0[b, j]), int(batch.z1[b, j])
            on = j < f or bool(switched[b, j])
            now = c if on else a
            if j >= f and on and a != c:
                if c == BLANK:
                    out.append((b, before - 1, INS))  # back in after the token before it
                elif a == BLANK:
                    out.append((b, before, DEL))
                else:
                    out.append((b, before, SUB))
            before += now != BLANK
    return sorted(out)


@pytest.mark.parametrize("seed", range(8))
def test_reverse_edits_are_the_switched_columns(seed):
    batch, g = random_batch(seed)
    switched = torch.rand(batch.z0.shape, generator=g) < 0.5
    path = sample_path(batch, make_scheduler("linear"), kappa=switched.float(), generator=g)
    got = sorted(zip(path.rev_batch.tolist(), path.rev_pos.tolist(), path.rev_op.tolist()))
    assert got == reference_reverse_edits(batch, switched)
    for b, p, op in got:  # a DEL / SUB undoes a token that is there; an INS needs a gap there
        n = int(path.attention_mask[b].sum())
        assert (0 <= p < n) if op != INS else (int(path.frozen[b]) - 1 <= p < n)


@pytest.mark.parametrize("normalize", ["batch_tokens", "none", "x1_length"])
def test_reverse_loss_matches_the_formula(normalize):
    batch, g = random_batch(3)
    sched = make_scheduler("cubic")
    path = sample_path(batch, sched, generator=g)
    mu = torch.nn.functional.softplus(torch.randn(*path.x_t.shape, 3, generator=g))
    got = float(reverse_flow_loss(mu, path, sched, normalize=normalize, max_weight=None))
    B = path.x_t.shape[0]
    tokens = [max(int(n), 1) for n in path.target_len]
    total = 0.0
    for b in range(B):
        t = float(path.t[b])
        w = 3 * t**2 / t**3  # kappa' / kappa for kappa = t^3, written out
        outflow = sum(
            float(mu[b, i, c])
            for i in range(path.x_t.shape[1])
            for c in range(3)
            if path.rate_mask[b, i, c]
        )
        logs = sum(
            math.log(float(mu[b, p, o]))
            for rb, p, o in zip(
                path.rev_batch.tolist(), path.rev_pos.tolist(), path.rev_op.tolist()
            )
            if rb == b
        )
        row = w * (outflow - logs)
        scale = {"batch_tokens": 1 / sum(tokens), "none": 1 / B, "x1_length": 1 / (tokens[b] * B)}
        total += row * scale[normalize]
    assert got == pytest.approx(total, rel=1e-4)


def test_reverse_weight_is_clamped_and_shape_checked():
    batch, g = random_batch(1)
    sched = make_scheduler("cubic")
    path = sample_path(batch, sched, t=torch.full((4,), 1e-4), generator=g)
    mu = torch.ones(*path.x_t.shape, 3)
    clamped = reverse_flow_loss(mu, path, sched, max_weight=20.0)
    free = reverse_flow_loss(mu, path, sched, max_weight=None)
    assert torch.isfinite(clamped) and free > 100 * clamped  # w_rev = 3 / t = 30,000 here
    with pytest.raises(ValueError, match="reverse_rates must be"):
        reverse_flow_loss(mu[:, :1], path, sched)
