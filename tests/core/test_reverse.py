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


def test_correction_zero_is_the_plain_sampler_and_needs_reverse_rates():
    from editflow_core import BatchSampler, SamplingParams

    from .fakes import ConstantModel, RatesFirstFake, TokenDependentModel

    def run(**kw):
        inner = TokenDependentModel(ins=0.5, dele=0.3, sub=0.4, seed=2, time_conditioned=True)
        model = RatesFirstFake(inner)
        sampler = BatchSampler(model, make_scheduler("cubic"))
        params = [SamplingParams(steps=8, seed=i, max_new_tokens=10, **kw) for i in range(3)]
        res = sampler.generate([[1, 4], [1], [1, 5, 5]], params=params)
        return [r.tokens for r in res], model.batch_sizes

    assert run() == run(correction=0.0)
    with pytest.raises(ValueError, match="correction needs a model with reverse rates"):
        BatchSampler(ConstantModel(), make_scheduler("cubic")).add(
            [1], params=SamplingParams(correction=1.0)
        )
    with pytest.raises(ValueError, match="correction must be a number >= 0"):
        SamplingParams(correction=-1.0).validate()


def test_the_corrector_undoes_switched_columns_with_the_oracle():
    """With the exact posterior (forward and reverse rates), x0 = masks: a corrected run's
    strings stay in the language's support as often as the plain run's within noise, takes one
    more forward per corrected step, and its undo edits are real (substitutions back to the
    mask and re-inserted masks show in the trace)."""
    import collections

    from editflow_core import BatchSampler, SamplingParams
    from editflow_testing.toy_posterior import OracleModel, ToyPosterior

    mask, V = 3, 12
    lang = {(5, 6, 2): 0.5, (6, 5, 5, 2): 0.3, (7, 2): 0.2}
    model = OracleModel(ToyPosterior(lang, 3, mask, lambda t: t**3), V)
    sampler = BatchSampler(
        model, make_scheduler("cubic"), x0_kind="masks", mask_token_id=mask, vocab_size=V,
        banned_token_ids=[0, 1, mask],
    )  # fmt: skip
    n = 300
    params = [
        SamplingParams(steps=32, seed=i, max_new_tokens=8, correction=2.0, trace=True)
        for i in range(n)
    ]
    res = sampler.generate([[1]] * n, x0=[[mask] * 3] * n, params=params)
    counts = collections.Counter(tuple(r.tokens[1:]) for r in res)
    assert sum(c for x, c in counts.items() if x in lang) / n > 0.85
    assert all(r.forward_passes > 32 for r in res)  # the corrector's own forwards
    undone = [
        e for r in res for s in r.trace for e in s.edits
        if (e.op == "sub" and e.token == mask) or (e.op == "ins" and e.token == mask)
    ]  # fmt: skip
    assert undone  # masks came back: the backward leaps fired


def test_corrected_rows_leave_the_other_rows_of_their_batch_alone():
    """Batch invariance with correction: a row's samples are the same alone or batched with rows
    of any correction (the corrector's forward and uniforms cover the corrected rows only, and
    each row draws from its own generator), so a server mixing requests stays reproducible."""
    from editflow_core import BatchSampler, SamplingParams
    from editflow_testing.toy_posterior import OracleModel, ToyPosterior

    mask, V = 3, 12
    lang = {(5, 6, 2): 0.5, (6, 5, 5, 2): 0.3, (7, 2): 0.2}
    model = OracleModel(ToyPosterior(lang, 3, mask, lambda t: t**3), V)

    def run(strengths):
        sampler = BatchSampler(
            model, make_scheduler("cubic"), x0_kind="masks", mask_token_id=mask, vocab_size=V,
            banned_token_ids=[0, 1, mask],
        )  # fmt: skip
        params = [
            SamplingParams(steps=12, seed=i, max_new_tokens=8, correction=c, trace=True)
            for i, c in strengths
        ]
        res = sampler.generate([[1]] * len(params), x0=[[mask] * 3] * len(params), params=params)
        return [(r.tokens, r.forward_passes, r.trace) for r in res]

    mixed = [(0, 0.0), (1, 2.0), (2, 0.0), (3, 1.0), (4, 0.0), (5, 4.0)]
    together = run(mixed)
    for (seed, c), got in zip(mixed, together):
        assert got == run([(seed, c)])[0], (seed, c)
    plain = [r for (_, c), r in zip(mixed, together) if c == 0]
    assert all(fwd == 12 for _, fwd, _ in plain)  # no corrector forward counted for them
    assert any(fwd > 12 for (_, c), (_, fwd, _) in zip(mixed, together) if c > 0)


def test_with_exact_rates_the_corrector_adds_malformed_strings():
    """Why the corrector does not pay on the toy language (docs/method/sampling.md): the
    sampler's error there is malformed strings, states the path never visits, where even the
    exact reverse rates are zero, so nothing undoes them; the corrector's longer forward leaps
    make more simultaneous edits, hence more of them. Exact oracle, x0 = masks, 8 steps, 600
    samples: plain about 0.13 malformed, corrected with c = 2 about 0.22 (4 standard errors)."""
    import collections

    from editflow_core import BatchSampler, SamplingParams
    from editflow_testing.toy_posterior import OracleModel, ToyPosterior

    mask, V, n = 3, 12, 600
    lang = {(5, 6, 2): 0.5, (6, 5, 5, 2): 0.3, (7, 2): 0.2}
    model = OracleModel(ToyPosterior(lang, 3, mask, lambda t: t**3), V)

    def malformed(c):
        sampler = BatchSampler(
            model, make_scheduler("cubic"), x0_kind="masks", mask_token_id=mask, vocab_size=V,
            banned_token_ids=[0, 1, mask],
        )  # fmt: skip
        params = [SamplingParams(steps=8, seed=i, max_new_tokens=8, correction=c) for i in range(n)]
        res = sampler.generate([[1]] * n, x0=[[mask] * 3] * n, params=params)
        counts = collections.Counter(tuple(r.tokens[1:]) for r in res)
        return sum(v for x, v in counts.items() if x not in lang) / n

    plain, corrected = malformed(0.0), malformed(2.0)
    print(f"malformed at 8 steps: plain {plain:.3f}, corrected (c = 2) {corrected:.3f}")
    assert corrected > plain + 0.05, (plain, corrected)
