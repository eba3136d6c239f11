"""The tau-leaping sampler driven by fake models of known rates."""

import math

import pytest
import torch
from editflow_core import (
    BLANK,
    DEL,
    INS,
    SUB,
    BatchSampler,
    EditFlowOutput,
    RatesFirst,
    SamplingParams,
    make_scheduler,
    sample_tokens,
)
from editflow_testing.reference import edit_distance, needleman_wunsch

from .fakes import (
    AnchorInsertModel,
    ConstantModel,
    OracleAppendModel,
    OracleSubModel,
    RatesFirstFake,
    TokenDependentModel,
)

MASK = 11
KAPPA = {"linear": lambda t: t, "cubic": lambda t: t**3, "poly[n:0.5]": lambda t: t**0.5}


def step_probabilities(spec: str, lam: float, steps: int, grid: str) -> list[float]:
    """P(an insertion fires) per step for a constant normalised rate lam <= 1, from the
    formulas: a pending edit switches in [t, t'] with f = (kappa(t') - kappa(t)) / (1 - kappa(t)),
    and the rule is p = min(1, lam * f). Grid "uniform": t_k = k / steps; "kappa": kappa(t_k) =
    k / steps."""
    kappa, out = KAPPA[spec], []
    for k in range(steps):
        if grid == "uniform":
            a, b = kappa(k / steps), kappa((k + 1) / steps)
        else:
            a, b = k / steps, (k + 1) / steps
        out.append(min(1.0, lam * (b - a) / (1 - a)))
    return out


@pytest.mark.parametrize(
    "spec,grid,lam",
    [("linear", "uniform", 0.5), ("cubic", "uniform", 0.7), ("cubic", "kappa", 0.7),
     ("poly[n:0.5]", "uniform", 0.4), ("poly[n:0.5]", "kappa", 0.9)],
)  # fmt: skip
def test_insertion_count_follows_the_step_law(spec, grid, lam):
    steps, n = 16, 3000
    sampler = BatchSampler(AnchorInsertModel(lam), make_scheduler(spec), time_grid=grid)
    res = sampler.generate(
        [[1]] * n,
        params=[SamplingParams(steps=steps, seed=i, max_new_tokens=100) for i in range(n)],
    )
    counts = torch.tensor([len(r.tokens) - 1 for r in res], dtype=torch.float64)
    p = step_probabilities(spec, lam, steps, grid)
    assert p[-1] == lam  # the last step reaches t = 1
    mean, var = sum(p), sum(q * (1 - q) for q in p)
    assert abs(counts.mean().item() - mean) < 4 * math.sqrt(var / n)
    assert abs(counts.var().item() - var) < 0.15 * var
    assert all(r.n_ins == len(r.tokens) - 1 and r.n_del == r.n_sub == 0 for r in res)


@pytest.mark.parametrize("spec", ["linear", "cubic", "cosine", "poly[n:0.5]"])
def test_kappa_grid_times_and_traces(spec):
    kappa = {**KAPPA, "cosine": lambda t: 1 - math.cos(math.pi * t / 2)}[spec]
    sched = make_scheduler(spec)
    model = ConstantModel(vocab=6, ins=0.5, time_conditioned=True)
    seen = []

    def spy(input_ids, attention_mask, t, ins_rows=None, sub_rows=None):
        seen.append(float(t[0]))
        return model(input_ids, attention_mask, t)

    spy.time_conditioned = True
    (r,) = BatchSampler(spy, sched).generate(
        [[1]], params=SamplingParams(steps=8, seed=0, trace=True)
    )
    assert len(seen) == 8 and seen[0] == 0.0
    for k, t in enumerate(seen):
        assert kappa(t) == pytest.approx(k / 8, abs=1e-6)  # the forward sees t_k
        assert r.trace[k].t == pytest.approx(t, abs=1e-6)


def test_one_hot_substitution_model_reproduces_a_known_text():
    target = [1, 7, 3, 9, 4, 4, 2, 8]
    mask = 11
    sampler = BatchSampler(OracleSubModel(target, vocab=12), make_scheduler("cubic"))
    res = sampler.generate(
        [[1]] * 4, x0=[[mask] * 7] * 4, params=SamplingParams(steps=64, seed=0, temperature=0.7)
    )
    for r in res:
        assert r.tokens == target
        assert r.n_sub == 7 and r.n_ins == r.n_del == 0


def test_one_hot_insertion_model_writes_text_left_to_right():
    target = [1, 5, 6, 7, 8, 9, 10]
    sampler = BatchSampler(OracleAppendModel(target, vocab=12), make_scheduler("linear"))
    (r,) = sampler.generate([[1]], params=SamplingParams(steps=40, seed=3))
    assert r.tokens == target and r.completion == target[1:]


def test_frozen_prompt_is_never_edited():
    model = ConstantModel(vocab=12, ins=3.0, dele=3.0, sub=3.0)
    sampler = BatchSampler(model, make_scheduler("cubic"))
    prompts = [[1, 4, 4, 9], [1, 2], [1, 3, 3, 3, 3, 3]]
    res = sampler.generate(
        prompts,
        x0=[[5, 5]] * 3,
        params=SamplingParams(steps=30, seed=1, trace=True, max_new_tokens=40),
    )
    for prompt, r in zip(prompts, res):
        assert r.tokens[: len(prompt)] == prompt
        assert r.n_ins + r.n_del + r.n_sub > 0
        for step in r.trace:
            for e in step.edits:
                assert e.pos >= (len(prompt) - 1 if e.op == "ins" else len(prompt))


def test_batch_results_equal_per_sequence_results_under_the_same_seeds():
    prompts = [[1], [1, 3, 4], [1, 2, 2, 2, 2, 6], [1, 9]]
    x0 = [[11] * 3, [], [11] * 5, [11]]
    params = [
        SamplingParams(
            steps=25,
            seed=10 + i,
            trace=True,
            temperature=[1.0, 0.5, 0.0, 1.3][i],
            top_k=[0, 3, 0, 0][i],
            top_p=[1.0, 1.0, 1.0, 0.8][i],
            max_new_tokens=30,
        )
        for i in range(4)
    ]
    model = TokenDependentModel(vocab=12, ins=1.5, dele=0.7, sub=1.0)
    batch = BatchSampler(model, make_scheduler("cubic")).generate(prompts, x0, params)
    for i in range(4):
        (alone,) = BatchSampler(model, make_scheduler("cubic")).generate(
            [prompts[i]], [x0[i]], [params[i]]
        )
        assert alone.tokens == batch[i].tokens
        assert alone.trace == batch[i].trace
    assert len({tuple(r.tokens) for r in batch}) == 4


def test_a_sequence_that_joins_mid_run_gets_its_solo_result():
    model = TokenDependentModel(vocab=12, ins=1.5, dele=0.7, sub=1.0)
    p = SamplingParams(steps=20, seed=42, max_new_tokens=30)
    (alone,) = BatchSampler(model, make_scheduler("cubic")).generate([[1, 5]], [[11, 11]], [p])
    s = BatchSampler(model, make_scheduler("cubic"))
    s.add([1], [11] * 4, SamplingParams(steps=30, seed=1), key="early")
    for _ in range(7):
        s.step()
    s.add([1, 5], [11, 11], p, key="late")
    results = {}
    while s.has_work:
        for r in s.step():
            results[r.key] = r
    assert results["late"].tokens == alone.tokens
    assert results["early"].steps == 30


def test_length_cap_and_finish_reason():
    model = ConstantModel(vocab=12, ins=50.0)
    res = BatchSampler(model, make_scheduler("linear")).generate(
        [[1, 2]], params=SamplingParams(steps=10, seed=0, max_new_tokens=6)
    )
    assert len(res[0].completion) == 6 and res[0].finish_reason == "length"
    res = BatchSampler(model, make_scheduler("linear"), max_length=5).generate(
        [[1, 2]], params=SamplingParams(steps=10, seed=0)
    )
    assert len(res[0].tokens) == 5 and res[0].finish_reason == "length"


def test_completion_is_cut_at_eos():
    target = [1, 5, 6, 3, 8, 9]
    sampler = BatchSampler(
        OracleAppendModel(target, vocab=12), make_scheduler("linear"), eos_token_id=3
    )
    (r,) = sampler.generate([[1]], params=SamplingParams(steps=40, seed=3, max_new_tokens=5))
    assert r.tokens == target and r.completion == [5, 6] and r.finish_reason == "stop"


def test_forward_is_reused_only_when_nothing_changed_and_t_is_ignored():
    still = ConstantModel(vocab=6)
    BatchSampler(still, make_scheduler("linear")).generate(
        [[1, 2]], params=SamplingParams(steps=12, seed=0)
    )
    assert still.calls == 1
    timed = ConstantModel(vocab=6, time_conditioned=True)
    (r,) = BatchSampler(timed, make_scheduler("linear")).generate(
        [[1, 2]], params=SamplingParams(steps=12, seed=0)
    )
    assert timed.calls == 12 and r.forward_passes == 12
    busy = ConstantModel(vocab=6, sub=40.0)
    BatchSampler(busy, make_scheduler("linear")).generate(
        [[1]], [[2, 3]], params=SamplingParams(steps=12, seed=0)
    )
    assert busy.calls == 12


def test_only_rows_that_changed_are_recomputed():
    # Row 0 never changes (no rates at its tokens); rows 1-2 edit often.
    model = RatesFirstFake(TokenDependentModel(vocab=12, ins=0.0, dele=0.0, sub=2.0))
    model.inner.rates = torch.tensor([0.0, 0.0, 2.0])
    s = BatchSampler(model, make_scheduler("linear"))
    res = s.generate([[1], [1], [1]], [[], [7, 8, 9], [4, 5]], SamplingParams(steps=16, seed=0))
    assert res[0].forward_passes == 1  # its first forward serves all 16 steps
    assert res[1].forward_passes > 4 and res[2].forward_passes > 4
    assert model.batch_sizes[0] == 3 and max(model.batch_sizes[1:]) <= 2
    assert s.forward_passes == len(model.batch_sizes)


@pytest.mark.parametrize("rates_first", [False, True])
def test_rows_computed_at_different_steps_still_give_solo_results(rates_first):
    # Low rates: at a given step some rows change and some do not, so the token logits of one
    # step come from forwards of different steps (and sub-batches of different widths).
    def make():
        inner = TokenDependentModel(vocab=12, ins=0.25, dele=0.1, sub=0.3, seed=3)
        return RatesFirstFake(inner) if rates_first else inner

    prompts = [[1, 2], [1, 3, 4, 5], [1], [1, 6, 6], [1, 7], [1, 8, 9, 10, 4]]
    x0 = [[11] * 4, [11] * 2, [11] * 6, [], [11], [11] * 3]
    params = [SamplingParams(steps=30, seed=i, trace=True, max_new_tokens=20) for i in range(6)]
    model = make()
    batch = BatchSampler(model, make_scheduler("cubic")).generate(prompts, x0, params)
    for i in range(6):
        (alone,) = BatchSampler(make(), make_scheduler("cubic")).generate(
            [prompts[i]], [x0[i]], [params[i]]
        )
        assert alone.tokens == batch[i].tokens and alone.trace == batch[i].trace
        assert alone.forward_passes == batch[i].forward_passes
    if rates_first:
        assert any(1 < n < 6 for n in model.batch_sizes)  # sub-batches did happen
    assert sum(r.n_ins + r.n_del + r.n_sub for r in batch) > 10


def test_idle_stop_ends_late_quiet_sequences_early():
    p = SamplingParams(steps=100, seed=0, idle_stop_steps=5, idle_stop_after=0.5)
    (r,) = BatchSampler(ConstantModel(vocab=6), make_scheduler("linear")).generate(
        [[1, 2]], params=p
    )
    assert r.steps == 50
    (r,) = BatchSampler(ConstantModel(vocab=6), make_scheduler("linear")).generate(
        [[1, 2]], params=SamplingParams(steps=100)
    )
    assert r.steps == 100


def test_bad_params_and_prefix_are_rejected():
    s = BatchSampler(ConstantModel(), make_scheduler("linear"))
    with pytest.raises(ValueError, match="top_p"):
        s.add([1], params=SamplingParams(top_p=0.0))
    with pytest.raises(ValueError, match="steps"):
        s.add([1], params=SamplingParams(steps=0))
    with pytest.raises(ValueError, match="anchor"):
        s.add([])
    with pytest.raises(ValueError, match="cap"):
        s.add([1], [2] * 10, SamplingParams(max_new_tokens=4))


def test_cancel_removes_a_running_sequence():
    s = BatchSampler(ConstantModel(ins=1.0), make_scheduler("linear"))
    s.add([1], params=SamplingParams(steps=50, seed=0), key="a")
    s.add([1], params=SamplingParams(steps=5, seed=0), key="b")
    s.step()
    assert s.cancel("a") and not s.cancel("zzz")
    done = []
    while s.has_work:
        done += [r.key for r in s.step()]
    assert done == ["b"]


def test_sample_tokens_filters():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).expand(4000, 4)
    u = torch.rand(4000, generator=torch.Generator().manual_seed(0))
    one = torch.ones(4000)
    free = sample_tokens(logits, u, one, torch.zeros(4000, dtype=torch.long), one)
    freq = torch.bincount(free, minlength=4).float() / 4000
    assert torch.allclose(freq, torch.tensor([0.5, 0.3, 0.15, 0.05]), atol=0.03)
    top2 = sample_tokens(logits, u, one, torch.full((4000,), 2), one)
    assert set(top2.tolist()) == {0, 1}
    assert abs((top2 == 0).float().mean().item() - 0.5 / 0.8) < 0.03
    nucleus = sample_tokens(
        logits, u, one, torch.zeros(4000, dtype=torch.long), torch.full((4000,), 0.7)
    )
    assert set(nucleus.tolist()) == {0, 1}
    greedy = sample_tokens(logits, u, torch.zeros(4000), torch.zeros(4000, dtype=torch.long), one)
    assert (greedy == 0).all()
    cold = sample_tokens(
        logits, u, torch.full((4000,), 0.25), torch.zeros(4000, dtype=torch.long), one
    )
    want = torch.softmax(logits[0] / 0.25, -1)
    assert torch.allclose(torch.bincount(cold, minlength=4).float() / 4000, want, atol=0.03)


def test_progress_shows_the_running_sequence_and_its_trace():
    s = BatchSampler(ConstantModel(vocab=12, sub=5.0), make_scheduler("linear"))
    s.add([1], [4, 4, 4], SamplingParams(steps=5, seed=0, trace=True), key="k")
    assert s.progress("k") is None  # queued, not running yet
    s.step()
    p = s.progress("k")
    assert p.tokens[0] == 1 and len(p.tokens) == 4 and len(p.trace) == 1 and p.step == 1
    assert p.n_sub == len(p.trace[0].edits) and p.n_ins == p.n_del == 0
    assert [e.pos for e in p.trace[0].edits] == sorted(e.pos for e in p.trace[0].edits)
    assert s.progress("other") is None and s.running_keys() == ["k"]


class RatesFirstWrapper:
    """The same model through the rates-first protocol, recording which rows it computed."""

    def __init__(self, inner):
        self.inner, self.time_conditioned, self.rows_asked = inner, inner.time_conditioned, 0

    def __call__(self, *args, **kwargs):
        raise AssertionError("the sampler must use forward_rates")

    def forward_rates(self, input_ids, attention_mask, t):
        out = self.inner(input_ids, attention_mask, t)

        def token_logits(ins_rows, sub_rows):
            self.rows_asked += len(ins_rows) + len(sub_rows)
            return out.ins_logits.flatten(0, 1)[ins_rows], out.sub_logits.flatten(0, 1)[sub_rows]

        return RatesFirst(out.rates, token_logits)


def test_rates_first_models_give_the_same_results_with_logits_at_fired_rows_only():
    inner = TokenDependentModel(vocab=12, ins=1.5, dele=0.7, sub=1.0)
    prompts, x0 = [[1], [1, 3, 4]], [[11] * 3, [11]]
    params = [SamplingParams(steps=15, seed=7 + i, max_new_tokens=20, trace=True) for i in range(2)]
    plain = BatchSampler(inner, make_scheduler("cubic")).generate(prompts, x0, params)
    wrapped = RatesFirstWrapper(inner)
    lazy = BatchSampler(wrapped, make_scheduler("cubic")).generate(prompts, x0, params)
    assert [r.tokens for r in lazy] == [r.tokens for r in plain]
    # one logit row per position that got a substitution or insertion(s) in a step
    fired = {(i, s.step, e.pos, e.op) for i, r in enumerate(lazy) for s in r.trace for e in s.edits}
    assert wrapped.rows_asked == sum(1 for f in fired if f[3] != "del")


class RealignOracle:
    """Realistic oracle rates: align x_t to the target (textbook DP) and put, at each slot, the
    number of pending edits there (normalised rate 1 per pending column); Q is one-hot."""

    time_conditioned = False

    def __init__(self, target, vocab):
        self.target, self.vocab = list(target), vocab

    def __call__(self, input_ids, attention_mask, t, ins_rows=None, sub_rows=None):
        B, L = input_ids.shape
        rates = torch.zeros(B, L, 3)
        ins = torch.zeros(B, L, self.vocab)
        sub = torch.zeros(B, L, self.vocab)
        for b in range(B):
            x = input_ids[b, : int(attention_mask[b].sum())].tolist()
            z0, z1 = needleman_wunsch(x[1:], self.target[1:])
            p = 0  # x_t position of the last token before the column
            for a, c in zip(z0, z1):
                if a == BLANK:
                    rates[b, p, INS] += 1
                    ins[b, p, c] = 30.0
                else:
                    p += 1
                    if c == BLANK:
                        rates[b, p, DEL] = 1.0
                    elif a != c:
                        rates[b, p, SUB] = 1.0
                        sub[b, p, c] = 30.0
        return EditFlowOutput(rates, ins, sub)


@pytest.mark.parametrize("spec", ["linear", "cubic", "cosine", "poly[n:0.5]", "poly[n:2]"])
@pytest.mark.parametrize("steps", [16, 256])
def test_an_oracle_at_realistic_rates_leaves_no_edit_pending(spec, steps):
    """Targets whose pending edits share a slot only when they insert the same token (so a
    one-hot Q is exact): x0 = empty and masks longer or shorter than x1; and distinct tokens
    from as many masks (one substitution per slot)."""
    g = torch.Generator().manual_seed(steps)
    cases = []
    for _ in range(6):
        m = int(torch.randint(3, 10, (1,), generator=g))
        repeated = [1] + [5] * m
        distinct = [1] + torch.randint(5, 11, (m,), generator=g).tolist()
        n = int(torch.randint(1, 12, (1,), generator=g))
        cases += [(repeated, []), (repeated, [MASK] * n), (distinct, [MASK] * m)]
    sched = make_scheduler(spec)
    for i, (target, x0) in enumerate(cases):
        model = RealignOracle(target, vocab=12)
        (r,) = BatchSampler(model, sched).generate(
            [[1]], [x0], SamplingParams(steps=steps, seed=i, max_new_tokens=40)
        )
        assert r.tokens == target, (x0, r.tokens)
        assert r.n_ins + r.n_del + r.n_sub == edit_distance([1, *x0], target)


@pytest.mark.parametrize("time_conditioned", [False, True])
@pytest.mark.parametrize("rates_first", [False, True])
def test_ragged_forwards_give_the_same_samples(time_conditioned, rates_first):
    """Rows grouped by length into several forwards (max_tokens_per_forward) change nothing but
    the forwards' shapes: the same tokens, edit counts and forward counts as one padded forward."""

    def run(budget):
        inner = TokenDependentModel(
            ins=0.4, dele=0.2, sub=0.3, seed=4, time_conditioned=time_conditioned
        )
        model = RatesFirstFake(inner) if rates_first else inner
        sampler = BatchSampler(model, make_scheduler("cubic"), max_tokens_per_forward=budget)
        prefixes = [[1] + [3] * n for n in (0, 9, 2, 14, 5, 1)]
        res = sampler.generate(
            prefixes, params=[SamplingParams(steps=12, seed=i, max_new_tokens=20) for i in range(6)]
        )
        sizes = model.batch_sizes if rates_first else None
        return [(r.tokens, r.n_ins, r.n_del, r.n_sub, r.forward_passes) for r in res], sizes

    padded, padded_sizes = run(0)
    ragged, ragged_sizes = run(12)
    assert ragged == padded
    if rates_first:
        assert max(ragged_sizes) < max(padded_sizes)  # the rows really were split


def test_max_tokens_per_forward_must_not_be_negative():
    with pytest.raises(ValueError, match="max_tokens_per_forward must be >= 0, got -1"):
        BatchSampler(ConstantModel(), make_scheduler("cubic"), max_tokens_per_forward=-1)
