"""Spec strings, schedulers, x0 samplers and sampling parameters: what they parse to, what they
reject (with the exact message a user sees), and the laws of the x0 lengths."""

from __future__ import annotations

import math

import pytest
import torch
from editflow_core import SamplingParams, Scheduler, X0Sampler, make_scheduler, make_x0_sampler
from editflow_core.spec import check_keys, parse_spec

# ------------------------------------------------------------------ parse_spec


@pytest.mark.parametrize(
    "spec,want",
    [
        ("cubic", ("cubic", {})),
        ("  Poly [ N : 2 ] ", ("poly", {"n": "2"})),
        ("masks[length:3-5, mean : 2]", ("masks", {"length": "3-5", "mean": "2"})),
        ("masks[]", ("masks", {})),
        ("masks[  ]", ("masks", {})),
        ("Uniform[Length:Big]", ("uniform", {"length": "Big"})),
        ("a_1[k:v:w]", ("a_1", {"k": "v:w"})),
    ],
)
def test_parse_spec_splits_name_and_items(spec, want):
    assert parse_spec(spec, "thing") == want


@pytest.mark.parametrize(
    "spec,message",
    [
        (3, "thing spec must be a string like 'name[key:value]', got 3"),
        ("1abc", "bad thing spec '1abc': expected 'name' or 'name[key:value,...]'"),
        ("a[b:c", "bad thing spec 'a[b:c': expected 'name' or 'name[key:value,...]'"),
        ("a[b]", "bad thing spec 'a[b]': item 'b' is not 'key:value'"),
        ("a[ :c]", "bad thing spec 'a[ :c]': item ':c' is not 'key:value'"),
        ("a[b: ]", "bad thing spec 'a[b: ]': item 'b:' is not 'key:value'"),
        ("a[b:1, ]", "bad thing spec 'a[b:1, ]': item '' is not 'key:value'"),
        ("a[b:1,B:2]", "bad thing spec 'a[b:1,B:2]': key 'b' given twice"),
    ],
)
def test_parse_spec_errors_say_what_is_wrong(spec, message):
    with pytest.raises(ValueError) as err:
        parse_spec(spec, "thing")
    assert str(err.value) == message


def test_check_keys_lists_the_valid_keys():
    check_keys("x[a:1]", "thing", {"a": "1"}, ("a", "b"))
    with pytest.raises(ValueError) as err:
        check_keys("x[c:1]", "thing", {"a": "1", "c": "1"}, ("a", "b"))
    assert str(err.value) == "bad thing spec 'x[c:1]': unknown key 'c' (valid keys: a, b)"
    with pytest.raises(ValueError) as err:
        check_keys("x[c:1]", "thing", {"c": "1"}, ())
    assert str(err.value) == "bad thing spec 'x[c:1]': unknown key 'c' (valid keys: none)"


# ------------------------------------------------------------------ schedulers


@pytest.mark.parametrize(
    "spec,want",
    [
        ("linear", Scheduler("poly", 1.0)),
        ("cubic", Scheduler("poly", 3.0)),
        ("poly[n:2]", Scheduler("poly", 2.0)),
        ("poly[n:0.5]", Scheduler("poly", 0.5)),
        ("cosine", Scheduler("cosine", 1.0)),
    ],
)
def test_scheduler_specs_build_the_documented_scheduler(spec, want):
    assert make_scheduler(spec) == want


@pytest.mark.parametrize(
    "spec,message",
    [
        ("cubic[", "bad scheduler spec 'cubic[': expected 'name' or 'name[key:value,...]'"),
        ("linear[n:2]", "bad scheduler spec 'linear[n:2]': unknown key 'n' (valid keys: none)"),
        ("cosine[a:1]", "bad scheduler spec 'cosine[a:1]': unknown key 'a' (valid keys: none)"),
        ("poly[m:2]", "bad scheduler spec 'poly[m:2]': unknown key 'm' (valid keys: n)"),
        ("poly", "bad scheduler spec 'poly': poly needs an exponent, e.g. 'poly[n:2]'"),
        ("poly[n:two]", "bad scheduler spec 'poly[n:two]': n must be a number, got 'two'"),
        ("poly[n:0]", "bad scheduler spec 'poly[n:0]': n must be a positive number, got 0.0"),
        ("poly[n:-2]", "bad scheduler spec 'poly[n:-2]': n must be a positive number, got -2.0"),
        ("poly[n:inf]", "bad scheduler spec 'poly[n:inf]': n must be a positive number, got inf"),
        ("poly[n:nan]", "bad scheduler spec 'poly[n:nan]': n must be a positive number, got nan"),
        (
            "quartic",
            "unknown scheduler 'quartic' in spec 'quartic'; "
            "valid: linear, cubic, poly[n:N], cosine",
        ),
    ],
)
def test_bad_scheduler_specs_give_the_exact_message(spec, message):
    with pytest.raises(ValueError) as err:
        make_scheduler(spec)
    assert str(err.value) == message


def test_scheduler_names_are_canonical_for_non_integer_and_large_exponents():
    assert str(Scheduler("poly", 2.5)) == "poly[n:2.5]"
    assert str(Scheduler("poly", 4.0)) == "poly[n:4]"
    assert str(Scheduler("poly", 3.0)) == "cubic" and str(Scheduler("poly", 1.0)) == "linear"
    assert str(Scheduler("cosine", 1.0)) == "cosine"


def test_cosine_inverse_absorbs_round_off_just_below_zero():
    """kappa a rounding error below 0 (float64) maps to t = 0, not NaN (the clamp)."""
    s = make_scheduler("cosine")
    k = torch.tensor([-1e-12, 0.0, 0.5, 1.0], dtype=torch.float64)
    t = s.inverse(k)
    assert t[0].item() == 0.0 and t[1].item() == 0.0
    assert t[2].item() == pytest.approx(2 / math.pi * math.acos(0.5))
    assert t[3].item() == pytest.approx(1.0)


def test_linear_d_kappa_is_one_everywhere_and_poly_derivative_at_zero():
    t = torch.tensor([0.0, 0.25, 1.0], dtype=torch.float64)
    assert make_scheduler("linear").d_kappa(t).tolist() == [1.0, 1.0, 1.0]
    assert make_scheduler("poly[n:2]").d_kappa(t).tolist() == [0.0, 0.5, 2.0]
    assert make_scheduler("cubic").d_kappa(t).tolist() == [0.0, 3 * 0.0625, 3.0]


# ------------------------------------------------------------------ x0 samplers


@pytest.mark.parametrize(
    "spec,want",
    [
        ("empty", X0Sampler("empty")),
        ("masks[length:7]", X0Sampler("masks", 7, 7)),
        ("masks[length:1]", X0Sampler("masks", 1, 1)),
        ("uniform[length:1-3]", X0Sampler("uniform", 1, 3)),
        ("uniform[length:2-9]", X0Sampler("uniform", 2, 9)),
        ("masks[length: 3 - 3 ]", X0Sampler("masks", 3, 3)),
        ("masks[mean:2.5]", X0Sampler("masks", mean=2.5)),
        ("uniform[mean:4]", X0Sampler("uniform", mean=4.0)),
    ],
)
def test_x0_specs_build_the_documented_sampler(spec, want):
    assert make_x0_sampler(spec) == want


@pytest.mark.parametrize(
    "spec,message",
    [
        (
            "empty[length:2]",
            "bad x0 spec 'empty[length:2]': unknown key 'length' (valid keys: none)",
        ),
        (
            "masks[size:2]",
            "bad x0 spec 'masks[size:2]': unknown key 'size' (valid keys: length, mean)",
        ),
        (
            "masks",
            "bad x0 spec 'masks': give exactly one of 'length' or 'mean', e.g. 'masks[length:64]'; "
            "valid: empty, masks[length:N], masks[length:A-B], masks[mean:M], uniform[length:N], "
            "uniform[length:A-B], uniform[mean:M], corrupt[p:P]",
        ),
        ("masks[mean:x]", "bad x0 spec 'masks[mean:x]': mean must be a positive number"),
        ("masks[mean:0]", "bad x0 spec 'masks[mean:0]': mean must be a positive number, got 0"),
        ("masks[mean:-1]", "bad x0 spec 'masks[mean:-1]': mean must be a positive number, got -1"),
        (
            "masks[mean:nan]",
            "bad x0 spec 'masks[mean:nan]': mean must be a positive number, got nan",
        ),
        (
            "masks[mean:inf]",
            "bad x0 spec 'masks[mean:inf]': mean must be a positive number, got inf",
        ),
        (
            "masks[length:0]",
            "bad x0 spec 'masks[length:0]': length must be a positive integer, got 0",
        ),
        (
            "masks[length:x]",
            "bad x0 spec 'masks[length:x]': length must be a positive integer, got 'x'",
        ),
        (
            "masks[length:2-y]",
            "bad x0 spec 'masks[length:2-y]': length must be a positive integer, got 'y'",
        ),
        ("masks[length:5-4]", "bad x0 spec 'masks[length:5-4]': length range 5-4 is empty"),
        (
            "masks[length:1[",
            "bad x0 spec 'masks[length:1[': expected 'name' or 'name[key:value,...]'",
        ),
    ],
)
def test_bad_x0_specs_give_the_exact_message(spec, message):
    with pytest.raises(ValueError) as err:
        make_x0_sampler(spec)
    assert str(err.value) == message


def test_x0_lengths_follow_their_laws():
    g = torch.Generator().manual_seed(3)
    n = 3000
    # length:A-B is uniform on A..B inclusive
    s = make_x0_sampler("masks[length:2-4]")
    counts = torch.bincount(torch.tensor([s.sample_length(g) for _ in range(n)]), minlength=5)
    assert counts[:2].sum() == 0
    assert (counts[2:].double() / n).tolist() == pytest.approx([1 / 3] * 3, abs=0.04)
    # mean:M is Poisson(M): P(0) = e^-M, E = M
    s = make_x0_sampler("masks[mean:0.7]")
    draws = torch.tensor([s.sample_length(g) for _ in range(n)], dtype=torch.float64)
    assert (draws == 0).double().mean().item() == pytest.approx(math.exp(-0.7), abs=0.04)
    assert draws.mean().item() == pytest.approx(0.7, abs=0.08)
    assert make_x0_sampler("uniform[length:5]").sample_length(g) == 5
    assert make_x0_sampler("empty").sample_length(g) == 0


def test_x0_samples_hold_the_right_tokens():
    g = torch.Generator().manual_seed(0)
    x = make_x0_sampler("masks[length:4]").sample(g, mask_token_id=9)
    assert x.dtype == torch.long and x.tolist() == [9, 9, 9, 9]
    # Poisson length 0 gives an empty tensor, without asking for a mask token
    s = make_x0_sampler("masks[mean:0.01]")
    assert any(len(s.sample(g)) == 0 for _ in range(50))
    e = make_x0_sampler("empty").sample(g, mask_token_id=9, vocab_size=5)
    assert e.dtype == torch.long and e.shape == (0,)
    # uniform: excluded ids (also ones outside the vocabulary) never appear, the rest do
    u = make_x0_sampler("uniform[length:3000]").sample(g, vocab_size=6, exclude_ids=[5, 0, -1, 99])
    assert u.dtype == torch.long and set(u.tolist()) == {1, 2, 3, 4}
    freq = torch.bincount(u, minlength=6)[1:5].double() / 3000
    assert freq.tolist() == pytest.approx([0.25] * 4, abs=0.04)


def test_x0_sample_errors():
    with pytest.raises(ValueError) as err:
        make_x0_sampler("masks[length:2]").sample(None)
    assert str(err.value) == (
        "x0 sampler masks[length:2] needs a mask token, but the tokenizer has none; "
        "add one or use 'empty' / 'uniform[...]'"
    )
    for vocab in (None, 0):
        with pytest.raises(ValueError) as err:
            make_x0_sampler("uniform[length:2]").sample(None, vocab_size=vocab)
        assert str(err.value) == f"x0 sampler uniform[length:2] needs vocab_size > 0, got {vocab!r}"
    with pytest.raises(ValueError, match="every token id is excluded"):
        make_x0_sampler("uniform[length:2]").sample(None, vocab_size=3, exclude_ids=[0, 1, 2])


def test_x0_names_round_trip_through_str():
    assert str(X0Sampler("masks", mean=3.0)) == "masks[mean:3]"
    assert str(X0Sampler("uniform", mean=0.25)) == "uniform[mean:0.25]"
    assert str(X0Sampler("masks", 4, 4)) == "masks[length:4]"
    assert str(X0Sampler("uniform", 1, 8)) == "uniform[length:1-8]"


# ------------------------------------------------------------------ sampling parameters


@pytest.mark.parametrize(
    "field,value,what",
    [
        ("steps", 0, "an integer >= 1"),
        ("temperature", -0.1, "a number >= 0"),
        ("temperature", math.inf, "a number >= 0"),
        ("temperature", math.nan, "a number >= 0"),
        ("top_k", -1, "an integer >= 0"),
        ("top_p", 0.0, "in (0, 1]"),
        ("top_p", 1.01, "in (0, 1]"),
        ("max_new_tokens", 0, "an integer >= 1"),
        ("idle_stop_steps", -1, "an integer >= 0"),
        ("idle_stop_after", -0.01, "in [0, 1]"),
        ("idle_stop_after", 1.01, "in [0, 1]"),
    ],
)
def test_sampling_params_reject_values_outside_their_range(field, value, what):
    with pytest.raises(ValueError) as err:
        SamplingParams(**{field: value}).validate()
    assert str(err.value) == f"sampling parameter {field} must be {what}, got {value!r}"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"steps": 1},
        {"temperature": 0.0},
        {"top_k": 0},
        {"top_k": 1},
        {"top_p": 1.0},
        {"top_p": 1e-6},
        {"max_new_tokens": 1},
        {"idle_stop_steps": 0},
        {"idle_stop_after": 0.0},
        {"idle_stop_after": 1.0},
    ],
)
def test_sampling_params_accept_the_edges_of_their_range(kwargs):
    SamplingParams(**kwargs).validate()


def test_sampling_params_defaults_filter_nothing_and_never_stop_early():
    p = SamplingParams()
    assert (p.temperature, p.top_k, p.top_p) == (1.0, 0, 1.0)
    assert (p.seed, p.trace, p.idle_stop_steps) == (None, False, 0)


def test_x0_draws_come_from_the_given_generator_only():
    for spec in ("masks[length:2-9]", "masks[mean:4]", "uniform[length:1-9]"):
        s = make_x0_sampler(spec)
        draws = []
        for global_seed in (0, 1):
            torch.manual_seed(global_seed)
            g = torch.Generator().manual_seed(7)
            draws.append([s.sample(g, mask_token_id=3, vocab_size=50).tolist() for _ in range(8)])
        assert draws[0] == draws[1], spec
        assert len({len(x) for x in draws[0]}) > 1, spec


def test_uniform_x0_over_a_one_token_vocabulary():
    x = make_x0_sampler("uniform[length:3]").sample(torch.Generator().manual_seed(0), vocab_size=1)
    assert x.tolist() == [0, 0, 0]
