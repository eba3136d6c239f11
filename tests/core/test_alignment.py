"""Alignment properties against a slow DP reference."""

import pytest
import torch
from editflow_core import BLANK, align, align_batch, couple_noise, strip_blanks
from editflow_testing.reference import edit_distance, needleman_wunsch
from hypothesis import given, settings
from hypothesis import strategies as st

seqs = st.lists(st.integers(0, 6), max_size=30)


def _check_alignment(x0, x1, z0, z1):
    assert len(z0) == len(z1)
    assert strip_blanks(z0) == list(x0)
    assert strip_blanks(z1) == list(x1)
    assert not any(a == BLANK and b == BLANK for a, b in zip(z0, z1))


@given(seqs, seqs)
@settings(max_examples=300, deadline=None)
def test_align_is_an_optimal_alignment(x0, x1):
    z0, z1 = align(x0, x1)
    _check_alignment(x0, x1, z0, z1)
    cost = sum(a != b for a, b in zip(z0, z1))
    assert cost == edit_distance(x0, x1)


@given(seqs, seqs)
@settings(max_examples=100, deadline=None)
def test_reference_dp_alignment_is_itself_optimal(x0, x1):
    z0, z1 = needleman_wunsch(x0, x1)
    _check_alignment(x0, x1, z0, z1)
    assert sum(a != b for a, b in zip(z0, z1)) == edit_distance(x0, x1)


def test_align_example():
    assert align([1, 2, 3], [1, 3]) == ([1, 2, 3], [1, BLANK, 3])
    assert align([], [4, 5]) == ([BLANK, BLANK], [4, 5])
    assert align([], []) == ([], [])


@given(
    st.integers(0, 20),
    st.lists(st.integers(0, 6), max_size=30),
    st.sampled_from(["random", "left", "right"]),
    st.integers(0, 10**6),
)
@settings(max_examples=300, deadline=None)
def test_couple_noise_is_optimal_for_token_free_x0(n, x1, gaps, seed):
    mask = 99  # never in x1: x0 holds no real tokens
    x0 = [mask] * n
    z0, z1 = couple_noise(
        torch.tensor(x0, dtype=torch.long),
        torch.tensor(x1, dtype=torch.long),
        gaps,
        torch.Generator().manual_seed(seed),
    )
    z0, z1 = z0.tolist(), z1.tolist()
    _check_alignment(x0, x1, z0, z1)
    assert sum(a != b for a, b in zip(z0, z1)) == edit_distance(x0, x1)


def test_gap_placement_left_right_random():
    x0, x1 = torch.tensor([9, 9]), torch.tensor([1, 2, 3, 4, 5, 6])
    z0, _ = couple_noise(x0, x1, "left")
    assert z0.tolist() == [BLANK] * 4 + [9, 9]
    z0, _ = couple_noise(x0, x1, "right")
    assert z0.tolist() == [9, 9] + [BLANK] * 4
    g = torch.Generator().manual_seed(0)
    first_gap = torch.zeros(6)
    for _ in range(3000):
        z0, _ = couple_noise(x0, x1, "random", g)
        first_gap += (z0 == BLANK).float()
    # each column is a gap with probability 4/6 under the uniform choice
    assert torch.allclose(first_gap / 3000, torch.full((6,), 4 / 6), atol=0.04)
    z0, z1 = couple_noise(torch.tensor([9, 9, 9]), torch.tensor([1]), "left")
    assert z1.tolist() == [BLANK, BLANK, 1] and z0.tolist() == [9, 9, 9]
    with pytest.raises(ValueError, match="gaps must be"):
        couple_noise(x0, x1, "middle")


@given(
    st.lists(st.tuples(seqs, seqs, st.integers(1, 4)), min_size=1, max_size=5),
    st.sampled_from(["optimal", "noise"]),
)
@settings(max_examples=100, deadline=None)
def test_align_batch_keeps_prefix_and_pads_with_blank_columns(pairs, coupling):
    x0s, x1s, frozen = [], [], []
    for a, b, f in pairs:
        prefix = list(range(100, 100 + f))
        x0s.append(prefix + a)
        x1s.append(prefix + b)
        frozen.append(f)
    out = align_batch(
        x0s, x1s, frozen, coupling=coupling, generator=torch.Generator().manual_seed(1)
    )
    assert out.z0.shape == out.z1.shape and out.frozen.tolist() == frozen
    for i in range(len(pairs)):
        z0, z1 = out.z0[i].tolist(), out.z1[i].tolist()
        assert strip_blanks(z0) == x0s[i] and strip_blanks(z1) == x1s[i]
        assert z0[: frozen[i]] == z1[: frozen[i]] == x0s[i][: frozen[i]]
        if coupling == "optimal":
            cost = sum(a != b for a, b in zip(z0, z1))
            assert cost == edit_distance(x0s[i], x1s[i])


@pytest.mark.parametrize("coupling", ["optimal", "noise"])
@pytest.mark.parametrize("as_tensor", [False, True])
def test_align_batch_errors(coupling, as_tensor):
    t = torch.tensor if as_tensor else list
    with pytest.raises(ValueError, match="pair 1: the frozen prefix of x0 differs"):
        align_batch([t([1]), t([1, 2])], [t([1]), t([1, 3])], [1, 2], coupling=coupling)
    with pytest.raises(ValueError, match="2 x0 sequences but 1"):
        align_batch([t([1]), t([1])], [t([1])], coupling=coupling)
    with pytest.raises(ValueError, match="exceeds"):
        align_batch([t([1])], [t([1, 2])], [2], coupling=coupling)
    out = align_batch([t([1, 5])], [t([1, 5, 6])], coupling=coupling, gaps="right")
    assert out.z0.tolist() == [[1, 5, BLANK]] and out.z1.tolist() == [[1, 5, 6]]
    with pytest.raises(ValueError, match="coupling must be"):
        align_batch([[1]], [[1]], coupling="dp")


@given(
    st.lists(st.tuples(st.integers(0, 12), seqs, st.integers(1, 3)), min_size=1, max_size=6),
    st.sampled_from(["random", "left", "right"]),
    st.integers(0, 10**6),
)
@settings(max_examples=200, deadline=None)
def test_batched_noise_coupling_is_optimal_and_matches_single_placement(rows, gaps, seed):
    x0s, x1s, frozen = [], [], []
    for n, b, f in rows:
        prefix = list(range(100, 100 + f))
        x0s.append(prefix + [99] * n)
        x1s.append(prefix + b)
        frozen.append(f)
    out = align_batch(
        x0s, x1s, frozen, coupling="noise", gaps=gaps, generator=torch.Generator().manual_seed(seed)
    )
    for i, f in enumerate(frozen):
        z0, z1 = out.z0[i].tolist(), out.z1[i].tolist()
        while z0 and z0[-1] == BLANK and z1[-1] == BLANK:
            z0.pop(), z1.pop()
        _check_alignment(x0s[i], x1s[i], z0, z1)
        assert sum(a != b for a, b in zip(z0, z1)) == edit_distance(x0s[i], x1s[i])
        if gaps != "random":
            s0, s1 = couple_noise(
                torch.tensor(x0s[i][f:], dtype=torch.long),
                torch.tensor(x1s[i][f:], dtype=torch.long),
                gaps,
            )
            assert z0[f:] == s0.tolist() and z1[f:] == s1.tolist()


def test_batched_random_gaps_are_uniform():
    x0s = [[1, 9, 9]] * 3000
    x1s = [[1, 2, 3, 4, 5, 6, 7]] * 3000
    out = align_batch(x0s, x1s, coupling="noise", generator=torch.Generator().manual_seed(0))
    freq = (out.z0[:, 1:] == BLANK).float().mean(0)
    assert torch.allclose(freq, torch.full((6,), 4 / 6), atol=0.03)
