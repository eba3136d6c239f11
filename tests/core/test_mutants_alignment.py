"""Alignment details from alignment.py's docstrings: tensors in, defaults, randomness from the
given generator only, dtypes, and the exact argument errors."""

from __future__ import annotations

import pytest
import torch
from editflow_core import BLANK, align_batch, couple_noise, strip_blanks


def test_strip_blanks_takes_lists_and_tensors():
    z = [4, BLANK, 5, BLANK, BLANK, 6]
    assert strip_blanks(z) == [4, 5, 6]
    assert strip_blanks(torch.tensor(z)) == [4, 5, 6]
    assert strip_blanks(torch.tensor([BLANK, BLANK])) == [] and strip_blanks([]) == []


def test_couple_noise_defaults_to_random_gaps_from_the_generator():
    x0, x1 = torch.tensor([9, 9]), torch.tensor([1, 2, 3, 4, 5, 6])
    torch.manual_seed(0)
    a = couple_noise(x0, x1, generator=torch.Generator().manual_seed(3))
    torch.manual_seed(1)
    b = couple_noise(x0, x1, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    placements = {
        tuple(couple_noise(x0, x1, generator=torch.Generator().manual_seed(s))[0].tolist())
        for s in range(40)
    }
    assert len(placements) > 5  # C(6, 2) = 15 placements, drawn at random
    for z0 in placements:
        assert [a for a in z0 if a != BLANK] == [9, 9] and len(z0) == 6
    z0, z1 = couple_noise(x0, x1)  # no generator: still a valid alignment
    assert z0.dtype == z1.dtype == torch.long and z1.tolist() == x1.tolist()


def test_couple_noise_with_equal_lengths_substitutes_every_column():
    x0, x1 = torch.tensor([9, 9, 9]), torch.tensor([1, 2, 3])
    z0, z1 = couple_noise(x0, x1, "left")
    assert z0.tolist() == [9, 9, 9] and z1.tolist() == [1, 2, 3]
    assert z0 is not x0 and z1 is not x1  # copies, not the inputs
    z0, z1 = couple_noise(torch.tensor([9, 9, 9, 9]), torch.tensor([7]), "right")
    assert z0.tolist() == [9, 9, 9, 9] and z1.tolist() == [7, BLANK, BLANK, BLANK]
    assert z1.dtype == torch.long


def test_align_batch_noise_random_gaps_come_from_the_generator():
    x0s, x1s = [[1, 9], [1, 9, 9]], [[1, 2, 3, 4, 5], [1, 6, 7, 8, 2, 2]]
    torch.manual_seed(0)
    a = align_batch(x0s, x1s, coupling="noise", generator=torch.Generator().manual_seed(4))
    torch.manual_seed(1)
    b = align_batch(x0s, x1s, coupling="noise", generator=torch.Generator().manual_seed(4))
    assert torch.equal(a.z0, b.z0) and torch.equal(a.z1, b.z1)
    assert a.z0.dtype == a.z1.dtype == a.frozen.dtype == torch.long
    assert a.frozen.tolist() == [1, 1]  # the anchor alone by default


def test_align_batch_optimal_dtypes_and_default_frozen():
    out = align_batch([[1, 2, 3], torch.tensor([1, 4])], [[1, 3], torch.tensor([1, 4, 5, 6])])
    assert out.z0.dtype == out.z1.dtype == out.frozen.dtype == torch.long
    assert out.frozen.tolist() == [1, 1]
    assert out.z0.tolist() == [[1, 2, 3, BLANK], [1, 4, BLANK, BLANK]]
    assert out.z1.tolist() == [[1, BLANK, 3, BLANK], [1, 4, 5, 6]]


@pytest.mark.parametrize("coupling", ["optimal", "noise"])
def test_align_batch_errors_give_the_exact_message(coupling):
    def err(*args, **kw):
        with pytest.raises(ValueError) as e:
            align_batch(*args, coupling=coupling, **kw)
        return str(e.value)

    assert err([[1], [1]], [[1]]) == "align_batch: 2 x0 sequences but 1 x1 sequences"
    assert err([[1], [1]], [[1], [1]], [1]) == "align_batch: 1 frozen lengths for 2 pairs"
    assert err([[1, 2]], [[1, 2, 3, 4, 5]], [3]) == (
        "pair 0: frozen length 3 exceeds a sequence (x0 2, x1 5)"
    )
    assert err([[1], [1, 2]], [[1], [1]], [1, -1]) == (
        "pair 1: frozen length -1 exceeds a sequence (x0 2, x1 1)"
    )
    assert err([[1], [1, 2]], [[1], [1, 3]], [1, 2]) == (
        "pair 1: the frozen prefix of x0 differs from that of x1"
    )
    # a frozen length equal to a whole sequence is fine
    out = align_batch([[1, 2]], [[1, 2, 5]], [2], coupling=coupling, gaps="left")
    assert out.z0.tolist() == [[1, 2, BLANK]] and out.z1.tolist() == [[1, 2, 5]]


def test_align_batch_rejects_unknown_couplings_and_gaps():
    with pytest.raises(ValueError) as e:
        align_batch([[1]], [[1]], coupling="dp")
    assert str(e.value) == "coupling must be 'optimal' or 'noise', got 'dp'"
    with pytest.raises(ValueError) as e:
        align_batch([[1]], [[1, 2]], coupling="noise", gaps="middle")
    assert str(e.value) == "gaps must be 'random', 'left' or 'right', got 'middle'"
    with pytest.raises(ValueError) as e:
        couple_noise(torch.tensor([9]), torch.tensor([1, 2]), "middle")
    assert str(e.value) == "gaps must be 'random', 'left' or 'right', got 'middle'"


@pytest.mark.parametrize("coupling", ["optimal", "noise"])
def test_align_batch_returns_long_tensors_for_int32_input(coupling):
    x0s = [torch.tensor([1, 9, 9], dtype=torch.int32), torch.tensor([1, 9], dtype=torch.int32)]
    x1s = [torch.tensor([1, 2], dtype=torch.int32), torch.tensor([1, 4, 5], dtype=torch.int32)]
    out = align_batch(x0s, x1s, coupling=coupling, gaps="left")
    assert out.z0.dtype == out.z1.dtype == out.frozen.dtype == torch.long
    assert [strip_blanks(z) for z in out.z1] == [[1, 2], [1, 4, 5]]


def test_an_empty_optimal_batch_gives_empty_long_tensors():
    out = align_batch([], [])
    assert out.z0.shape == out.z1.shape == (0, 0) and out.frozen.shape == (0,)
    assert out.z0.dtype == out.z1.dtype == out.frozen.dtype == torch.long
