"""A model trained by editflow-train learns a language with known string probabilities.

The language: "ab" (0.5), "baa" (0.3), "c" (0.2), one string per x1 (``pack: false``). Two tiny
models train at once through the command users run (``editflow-train pt --config``), with
x0 = empty and x0 = masks[length:3]; then, through the product's loading path (checkpoint
folder -> ``load_generation_setup``):

- their normalised rates match the exact posterior E[#pending edits | x_t, t] of the path
  (``editflow_testing.toy_posterior``, enumerated from the path's definition) at several t;
- samples from ``setup.sampler()`` reproduce the string frequencies (total variation);
- their likelihood bound is at least the language's entropy.

The backbone is BERT (absolute positions): a 2-layer ModernBERT of this size did not learn,
within the budget, to tell three identical masks apart by their rotary positions alone (its
rates at [M, M] and [M, M, M] came out equal).

Total variation bound. With N samples over the three strings plus "malformed", the estimate
TV = 1/2 sum |p_hat - p| has mean at most TV_true + 1/2 sum sqrt(p (1 - p) / N) (0.018 at N =
2000, 0.024 at 1000) and, one sample moving it by at most 1/N, exceeds its mean by eps with
probability at most exp(-2 N eps^2) (McDiarmid): eps = 0.045 at N = 2000 and 0.055 at 1000 keep
that below 3e-3. An exact-posterior oracle's own discretisation error at 64 steps is about
0.02-0.03 on this language and a trained model's rate error adds about as much, so TV_true <=
0.04 is what a correct pipeline gives: the bound is 0.04 + noise mean + eps, i.e. 0.10 (64
steps, N = 2000) and 0.12 (256 steps, N = 1000). The old sampler, which clamped w(t) and stopped
at 1 - h, gave 17% malformed strings on such a language.
"""

from __future__ import annotations

import collections
import math
import subprocess
import sys

import pytest
import torch
from editflow_testing.toy_posterior import ToyPosterior
from editflow_testing.toy_training import TOY_LANGUAGE as TEXTS
from editflow_testing.toy_training import toy_config, write_toy_language

from .conftest import REPO, cli_env, write_config

X0 = {"empty": ("empty", 0), "masks": ("masks[length:3]", 3)}


@pytest.fixture(scope="module")
def toy_models(tmp_path_factory):
    """Train the models at once (x0 = empty and masks, and masks with reverse rates as its own
    model: learned alongside, the reverse loss's large weight near t = 0 took capacity from the
    forward rates of this tiny network); return {name: loaded setup}."""
    from editflow_models.generation import load_generation_setup

    root = tmp_path_factory.mktemp("toy")
    data = write_toy_language(root / "toy.txt")
    procs = {}
    runs = [(name, spec, False) for name, (spec, _) in X0.items()]
    runs.append(("masks-reverse", X0["masks"][0], True))  # every reverse kind occurs with masks
    for name, spec, reverse in runs:
        cfg = write_config(
            root / f"{name}.yaml", toy_config(data, root / name, spec, reverse_rates=reverse)
        )
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "editflow_train.cli", "pt", "--config", str(cfg)],
            cwd=REPO,
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    setups = {}
    for name, proc in procs.items():
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out[-3000:]
        setups[name] = load_generation_setup(root / name / "checkpoint-final")
    return setups


def language(setup) -> dict[tuple[int, ...], float]:
    """The strings as the model's token ids (after the anchor, EOS included)."""
    tok = setup.tokenizer
    return {
        (*tok(text, add_special_tokens=False)["input_ids"], setup.eos_token_id): p
        for text, p in TEXTS.items()
    }


def cubic(t: float) -> float:
    return t**3


@pytest.mark.parametrize("name", list(X0))
def test_learned_rates_match_the_exact_posterior(toy_models, name):
    """At each t, over the states x_t of probability >= 0.01: the expected number of pending
    edits E[#edits | t] = sum_x P(x) sum_i lam_i(x, t) within 5%; every state of probability
    >= 0.05 within 10% (and its per-slot rates within 20% in L1); nothing expected where
    nothing is pending."""
    setup = toy_models[name]
    post = ToyPosterior(language(setup), X0[name][1], setup.mask_token_id, cubic)
    for t in (0.3, 0.6, 0.9):
        expected_model = expected_ref = 0.0
        for state, p in post.states(t).items():
            if p < 0.01:
                continue
            ids = torch.tensor([[setup.anchor_token_id, *state]])
            with torch.no_grad():
                lam = setup.model(ids, torch.ones_like(ids), torch.tensor([t])).rates[0].double()
            ref = post.rates(state, t)
            want = torch.tensor([ref.ins, ref.dele, ref.sub], dtype=torch.float64).T  # (L, 3)
            allowed = torch.ones_like(want, dtype=torch.bool)
            allowed[0, 1:] = False  # the anchor is never deleted or substituted
            got_total, want_total = float(lam[allowed].sum()), float(want[allowed].sum())
            expected_model += p * got_total
            expected_ref += p * want_total
            where = (
                f"x_t={state} t={t} P={p:.2f}: {lam[allowed].tolist()} vs {want[allowed].tolist()}"
            )
            if want_total == 0:  # nothing pending: the model must expect (almost) nothing
                assert got_total < 0.05, where
            elif p >= 0.05:
                assert abs(got_total - want_total) <= 0.10 * want_total, where
                assert float((lam - want)[allowed].abs().sum()) <= 0.20 * want_total, where
        assert abs(expected_model - expected_ref) <= 0.05 * expected_ref, (
            t,
            expected_model,
            expected_ref,
        )


def test_with_x0_empty_the_only_reverse_edits_are_deletions(toy_models):
    setup = toy_models["empty"]
    post = ToyPosterior(language(setup), 0, setup.mask_token_id, cubic)
    for t in (0.3, 0.6, 0.9):
        for state in post.states(t):
            ref = post.rates(state, t)
            assert sum(ref.rins) == sum(ref.rsub) == 0
            assert sum(ref.rdel) == pytest.approx(len(state))  # every present token was inserted


def test_learned_reverse_rates_match_the_exact_posterior(toy_models):
    """The reverse rates (undoing switched columns backward in time: re-insert a deleted mask,
    delete an inserted token, substitute a token back to a mask) against E[#switched columns |
    x_t, t] of the path, x0 = masks: expected totals within 5% at each t, every state of
    probability >= 0.05 within 10%."""
    name = "masks"
    setup = toy_models["masks-reverse"]
    post = ToyPosterior(language(setup), X0[name][1], setup.mask_token_id, cubic)
    for t in (0.3, 0.6, 0.9):
        got_total = want_total = 0.0
        for state, p in post.states(t).items():
            if p < 0.01:
                continue
            ids = torch.tensor([[setup.anchor_token_id, *state]])
            with torch.no_grad():
                out = setup.model(ids, torch.ones_like(ids), torch.tensor([t]))
            mu = out.reverse_rates[0].double()  # (L, 3): re-insert, delete, sub back
            ref = post.rates(state, t)
            want = torch.tensor([ref.rins, ref.rdel, ref.rsub], dtype=torch.float64).T
            allowed = torch.ones_like(want, dtype=torch.bool)
            allowed[0, 1:] = False  # the anchor is never deleted or substituted
            got, wanted = float(mu[allowed].sum()), float(want[allowed].sum())
            got_total, want_total = got_total + p * got, want_total + p * wanted
            if p >= 0.05 and wanted > 0:
                assert abs(got - wanted) <= 0.10 * wanted, (state, t, got, wanted)
        assert abs(got_total - want_total) <= 0.05 * want_total, (t, got_total, want_total)


def total_variation(counts: collections.Counter, truth: dict, n: int) -> tuple[float, float]:
    malformed = sum(c for x, c in counts.items() if x not in truth) / n
    tv = 0.5 * (sum(abs(counts.get(x, 0) / n - p) for x, p in truth.items()) + malformed)
    return tv, malformed


@pytest.mark.parametrize("steps,n,bound", [(64, 2000, 0.10), (256, 1000, 0.12)])
@pytest.mark.parametrize("name", list(X0))
def test_samples_reproduce_the_string_frequencies(toy_models, name, steps, n, bound):
    from editflow_core import SamplingParams

    setup = toy_models[name]
    truth = language(setup)
    gen = torch.Generator().manual_seed(steps)
    results = setup.sampler().generate(
        [setup.text_prefix("")] * n,
        [setup.draw_x0(gen) for _ in range(n)],
        [SamplingParams(steps=steps, seed=i, max_new_tokens=10) for i in range(n)],
    )
    counts = collections.Counter(tuple(r.tokens[1:]) for r in results)
    tv, malformed = total_variation(counts, truth, n)
    print(f"{name}, {steps} steps: TV {tv:.3f}, malformed {malformed:.3f}")
    assert tv <= bound, (tv, malformed, counts.most_common(6))


@pytest.mark.parametrize("name", list(X0))
def test_likelihood_bound_is_at_least_the_entropy(toy_models, name):
    setup = toy_models[name]
    truth = language(setup)
    x1s = [[setup.anchor_token_id, *x] for x, p in truth.items() for _ in range(round(60 * p))]
    res = setup.nll_bound(x1s, samples=32, seed=0)
    per_string, se = res.total / len(x1s), res.total_se / len(x1s)
    entropy = -sum(p * math.log(p) for p in TEXTS.values())
    print(f"{name}: bound {per_string:.3f} +- {se:.3f} nats per string, entropy {entropy:.3f}")
    assert per_string >= entropy - 3 * se
    assert per_string <= entropy + 0.5  # and it is a tight bound for a well-trained model
