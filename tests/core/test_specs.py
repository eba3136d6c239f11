"""Scheduler and x0 spec parsing, validation and round trips."""

import math

import pytest
import torch
from editflow_core import make_scheduler, make_x0_sampler


@pytest.mark.parametrize(
    "spec", ["linear", "cubic", "cosine", "poly[n:2]", "poly[n:0.5]", "poly[n:5]"]
)
def test_scheduler_spec_round_trips(spec):
    s = make_scheduler(spec)
    assert str(s) == spec
    assert str(make_scheduler(str(s))) == spec


def test_scheduler_aliases_are_canonical():
    assert str(make_scheduler("poly[n:3]")) == "cubic"
    assert str(make_scheduler("poly[n:1]")) == "linear"
    assert str(make_scheduler(" Cubic ")) == "cubic"


@pytest.mark.parametrize(
    "spec,formula",
    [
        ("linear", lambda t: t),
        ("cubic", lambda t: t**3),
        ("poly[n:2]", lambda t: t**2),
        ("cosine", lambda t: 1 - math.cos(math.pi * t / 2)),
    ],
)
def test_scheduler_kappa_matches_formula_and_derivative(spec, formula):
    s = make_scheduler(spec)
    t = torch.linspace(0.01, 0.99, 37, dtype=torch.float64)
    assert torch.allclose(
        s.kappa(t), torch.tensor([formula(x) for x in t.tolist()], dtype=torch.float64)
    )
    eps = 1e-6
    numeric = (s.kappa(t + eps) - s.kappa(t - eps)) / (2 * eps)
    assert torch.allclose(s.d_kappa(t), numeric, atol=1e-6)
    assert s.kappa(torch.tensor(0.0)) == 0 and abs(float(s.kappa(torch.tensor(1.0))) - 1) < 1e-12
    assert torch.allclose(s.weight(t), s.d_kappa(t) / (1 - s.kappa(t)))


FORMULAS = {
    "linear": lambda t: t,
    "cubic": lambda t: t**3,
    "poly[n:0.5]": lambda t: t**0.5,
    "cosine": lambda t: 1 - math.cos(math.pi * t / 2),
}


@pytest.mark.parametrize("spec", FORMULAS)
def test_jump_fraction_and_inverse_match_the_formula(spec):
    s, kappa = make_scheduler(spec), FORMULAS[spec]
    grid = [(0.0, 0.1), (0.2, 0.25), (0.5, 0.75), (0.9, 0.95), (0.97, 1.0), (0.0, 1.0)]
    for a, b in grid:
        want = (kappa(b) - kappa(a)) / (1 - kappa(a))
        got = float(s.jump_fraction(*torch.tensor([a, b], dtype=torch.float64)))
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12), (a, b)
    assert float(s.jump_fraction(torch.tensor(0.5), torch.tensor(1.0))) == 1.0
    k = torch.linspace(0, 1, 11, dtype=torch.float64)
    assert torch.allclose(s.kappa(s.inverse(k)), k, atol=1e-12)


@pytest.mark.parametrize("spec", FORMULAS)
def test_one_minus_kappa_keeps_its_digits_near_one(spec):
    s, kappa = make_scheduler(spec), FORMULAS[spec]
    t = torch.tensor([0.0, 0.3, 1 - 1e-3, 1 - 1e-7, 1.0], dtype=torch.float64)
    got = s.one_minus_kappa(t).tolist()
    assert got[0] == 1.0 and got[-1] == 0.0
    assert got[1] == pytest.approx(1 - kappa(0.3), rel=1e-12)
    # float32 input near 1 still gives the right small number (no cancellation in 1 - kappa)
    t32 = torch.tensor([1 - 2**-20], dtype=torch.float32)
    want = 1 - kappa(1 - 2**-20)
    assert float(s.one_minus_kappa(t32)) == pytest.approx(want, rel=1e-3)


def test_weight_is_unclamped_and_infinite_at_one():
    s = make_scheduler("cubic")
    w = s.weight(torch.tensor([0.5, 0.99, 1.0], dtype=torch.float64))
    assert w[0] == pytest.approx(3 * 0.25 / (1 - 0.125))
    assert w[1] == pytest.approx(3 * 0.99**2 / (1 - 0.99**3))
    assert w[2] == float("inf")


@pytest.mark.parametrize(
    "spec,fragment",
    [
        ("quadratic", "unknown scheduler 'quadratic'"),
        ("poly", "needs an exponent"),
        ("poly[n:x]", "must be a number"),
        ("poly[n:-1]", "positive"),
        ("poly[m:2]", "unknown key 'm'"),
        ("linear[n:2]", "unknown key 'n'"),
        ("cubic[", "expected 'name'"),
    ],
)
def test_bad_scheduler_specs_name_the_problem(spec, fragment):
    with pytest.raises(ValueError) as err:
        make_scheduler(spec)
    assert fragment in str(err.value)
    if "unknown scheduler" in fragment:
        assert "linear, cubic, poly[n:N], cosine" in str(err.value)


@pytest.mark.parametrize(
    "spec",
    [
        "empty",
        "masks[length:64]",
        "uniform[length:8]",
        "masks[length:32-96]",
        "masks[mean:40]",
        "uniform[mean:2.5]",
    ],
)
def test_x0_spec_round_trips(spec):
    assert str(make_x0_sampler(spec)) == spec


@pytest.mark.parametrize(
    "spec,fragment",
    [
        ("noise[length:3]", "unknown x0 sampler 'noise'"),
        ("masks", "exactly one of 'length' or 'mean'"),
        ("masks[length:0]", "positive integer, got 0"),
        ("masks[length:-4]", "positive integer"),
        ("masks[length:4.5]", "positive integer, got '4.5'"),
        ("masks[length:ten]", "positive integer, got 'ten'"),
        ("masks[size:4]", "unknown key 'size'"),
        ("masks[length:9-3]", "range 9-3 is empty"),
        ("masks[length:4,mean:3]", "exactly one"),
        ("uniform[mean:0]", "positive number"),
        ("empty[length:3]", "unknown key 'length'"),
        ("masks[length]", "is not 'key:value'"),
    ],
)
def test_bad_x0_specs_name_the_problem(spec, fragment):
    with pytest.raises(ValueError) as err:
        make_x0_sampler(spec)
    assert fragment in str(err.value)


def test_unknown_x0_lists_valid_specs():
    with pytest.raises(ValueError, match=r"valid: empty, masks\[length:N\]"):
        make_x0_sampler("zeros")


def test_x0_samples():
    g = torch.Generator().manual_seed(0)
    assert make_x0_sampler("empty").sample(g).tolist() == []
    assert make_x0_sampler("masks[length:5]").sample(g, mask_token_id=7).tolist() == [7] * 5
    lengths = {
        len(make_x0_sampler("masks[length:2-4]").sample(g, mask_token_id=1)) for _ in range(200)
    }
    assert lengths == {2, 3, 4}
    toks = make_x0_sampler("uniform[length:2000]").sample(g, vocab_size=10, exclude_ids=[0, 3])
    assert set(toks.tolist()) == set(range(10)) - {0, 3}
    mean = (
        sum(len(make_x0_sampler("masks[mean:6]").sample(g, mask_token_id=1)) for _ in range(2000))
        / 2000
    )
    assert abs(mean - 6) < 0.3


def test_masks_without_mask_token_is_a_clear_error():
    with pytest.raises(ValueError, match="needs a mask token"):
        make_x0_sampler("masks[length:4]").sample(None)
