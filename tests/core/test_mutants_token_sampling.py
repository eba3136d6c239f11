"""sample_tokens against a slow per-row reference written from token_sampling.py's docstring.

The rule: greedy (argmax) at temperature 0; otherwise p = softmax(logits / temperature), keep
the top_k most likely tokens (0: all), then the smallest most-likely-first set whose mass
reaches top_p (the most likely token always stays), renormalise, and invert the CDF in
vocabulary order at u.
"""

from __future__ import annotations

import math

import pytest
import torch
from editflow_core import sample_tokens
from hypothesis import assume, given, settings
from hypothesis import strategies as st


def reference_token(logits: list[float], u: float, temperature: float, top_k: int, top_p: float):
    """One row, in plain Python floats (double precision)."""
    if temperature <= 0:
        return max(range(len(logits)), key=lambda i: (logits[i], -i)), math.inf
    z = [x / temperature for x in logits]
    top = max(z)
    p = [math.exp(x - top) for x in z]
    total = sum(p)
    p = [x / total for x in p]
    ranked = sorted(range(len(p)), key=lambda i: -p[i])
    if top_k > 0:
        ranked = ranked[:top_k]
    mass = sum(p[i] for i in ranked)
    keep, before = [], 0.0
    for i in ranked:  # most likely first, shares of the top-k mass
        if keep and before >= top_p:
            break
        keep.append(i)
        before += p[i] / mass
    kept = sorted(keep)
    q = {i: p[i] for i in kept}
    norm = sum(q.values())
    acc, gap = 0.0, math.inf
    for i in kept:  # CDF in vocabulary order
        acc += q[i] / norm
        gap = min(gap, abs(acc - u))
        if u < acc:
            return i, gap
    return kept[-1], gap


@given(
    st.integers(2, 9),
    st.integers(0, 2**31),
    st.sampled_from([0.0, 0.3, 1.0, 1.7]),
    st.integers(0, 10),
    st.sampled_from([1.0, 0.95, 0.6, 0.3, 0.05]),
    st.floats(0.5, 4.0),
)
@settings(max_examples=60, deadline=None)
def test_sample_tokens_matches_the_reference(V, seed, temperature, top_k, top_p, spread):
    g = torch.Generator().manual_seed(seed)
    N = 6
    logits = torch.randn(N, V, generator=g, dtype=torch.float64) * spread
    u = torch.rand(N, generator=g, dtype=torch.float64)
    got = sample_tokens(
        logits.float(),
        u.float(),
        torch.full((N,), temperature),
        torch.full((N,), top_k, dtype=torch.long),
        torch.full((N,), top_p),
    )
    for n in range(N):
        row = logits[n].float().double().tolist()
        want, gap = reference_token(row, float(u[n].float()), temperature, top_k, top_p)
        # float32 CDF vs double reference: skip draws within rounding of a CDF step
        assume(gap > 1e-5)
        assert int(got[n]) == want, (row, float(u[n]), temperature, top_k, top_p)


def test_rows_keep_their_own_settings_in_one_call():
    """Per-row temperature, top-k and top-p: each row's draw equals its draw alone."""
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(5, 8, generator=g)
    u = torch.rand(5, generator=g)
    temp = torch.tensor([1.0, 0.0, 0.7, 1.3, 1.0])
    top_k = torch.tensor([0, 0, 3, 1, 2])
    top_p = torch.tensor([1.0, 0.5, 1.0, 1.0, 0.4])
    both = sample_tokens(logits, u, temp, top_k, top_p)
    for n in range(5):
        alone = sample_tokens(logits[n : n + 1], u[n : n + 1], temp[n : n + 1],
                              top_k[n : n + 1], top_p[n : n + 1])  # fmt: skip
        assert int(both[n]) == int(alone[0])
        want, _ = reference_token(logits[n].double().tolist(), float(u[n]), float(temp[n]),
                                  int(top_k[n]), float(top_p[n]))  # fmt: skip
        assert int(both[n]) == want


def test_top_k_one_is_the_most_likely_token():
    logits = torch.tensor([[0.1, 2.0, -1.0, 1.9]]).expand(200, 4)
    u = torch.rand(200, generator=torch.Generator().manual_seed(0))
    out = sample_tokens(logits, u, torch.ones(200), torch.ones(200, dtype=torch.long),
                        torch.ones(200))  # fmt: skip
    assert (out == 1).all()


def test_top_k_and_top_p_together_apply_both():
    # p = (0.4, 0.3, 0.2, 0.1); top_k = 3 leaves (4/9, 3/9, 2/9); top_p = 0.9 then keeps
    # tokens 0-2 of those (mass before token 2 is 7/9 < 0.9): token 3 never comes out
    logits = torch.log(torch.tensor([[0.4, 0.3, 0.2, 0.1]])).expand(4000, 4)
    u = torch.rand(4000, generator=torch.Generator().manual_seed(1))
    out = sample_tokens(
        logits, u, torch.ones(4000), torch.full((4000,), 3), torch.full((4000,), 0.9)
    )
    assert set(out.tolist()) == {0, 1, 2}
    freq = torch.bincount(out, minlength=4).double() / 4000
    assert freq[:3].tolist() == pytest.approx([4 / 9, 3 / 9, 2 / 9], abs=0.03)


def test_top_p_stops_as_soon_as_the_mass_is_reached():
    # four equal tokens: top_p = 0.5 keeps exactly two (0.25 + 0.25 reaches 0.5)
    logits = torch.zeros(2000, 4)
    u = torch.rand(2000, generator=torch.Generator().manual_seed(2))
    out = sample_tokens(logits, u, torch.ones(2000), torch.zeros(2000, dtype=torch.long),
                        torch.full((2000,), 0.5))  # fmt: skip
    assert len(set(out.tolist())) == 2
    # a most likely token that alone reaches top_p is the only one kept
    logits = torch.log(torch.tensor([[0.1, 0.5, 0.3, 0.1]])).expand(2000, 4)
    out = sample_tokens(logits, u, torch.ones(2000), torch.zeros(2000, dtype=torch.long),
                        torch.full((2000,), 0.4))  # fmt: skip
    assert (out == 1).all()


def test_empty_input_gives_no_tokens():
    out = sample_tokens(torch.zeros(0, 5), torch.zeros(0), torch.zeros(0),
                        torch.zeros(0, dtype=torch.long), torch.zeros(0))  # fmt: skip
    assert out.shape == (0,) and out.dtype == torch.long


def test_u_near_one_gives_the_last_kept_token():
    logits = torch.tensor([[1.0, 0.0, 3.0, -2.0]])
    one = torch.ones(1)
    out = sample_tokens(
        logits, torch.tensor([1 - 1e-7]), one, torch.zeros(1, dtype=torch.long), one
    )
    assert int(out[0]) == 3
    out = sample_tokens(logits, torch.tensor([0.0]), one, torch.zeros(1, dtype=torch.long), one)
    assert int(out[0]) == 0


def test_top_k_alone_keeps_k_tokens_even_when_their_mass_rounds_below_one():
    # float32 softmax of these three most likely tokens sums to 1 - 6e-8: top_p = 1 must not
    # bring the others back
    logits = torch.tensor([[1.5409961, -0.2934289, -2.1787894, 0.5684313, -1.0845224, -1.3985955]])
    n = 4000
    u = torch.rand(n, generator=torch.Generator().manual_seed(3))
    out = sample_tokens(logits.expand(n, 6), u, torch.ones(n), torch.full((n,), 3), torch.ones(n))
    assert set(out.tolist()) == {0, 1, 3}
