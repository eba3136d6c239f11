"""BatchSampler against a slow one-sequence reference written from the docstrings of
sampler.py and leap.py, and the sampler's queue, books and errors.

The reference follows the documented contract step by step: the step grid (kappa or uniform),
one forward at t_k, rates masked as ``rate_mask`` says, the sequence's generator drawing a
(5, n) block of uniforms per step (fire-ins, fire-del/sub, del-vs-sub, ins token, sub token),
the firing rule of leap.py (p = min(1, lam * f); on the last step floor(lam) + Bernoulli
insertions), the length cap dropping the rightmost insertions, the first insertion after a
position drawing its token at u[3], further ones at fresh uniforms from the generator in
position order, banned tokens never drawn, and all edits applied at once, left to right.
"""

from __future__ import annotations

import math

import pytest
import torch
from editflow_core import BatchSampler, EditOp, SamplingParams, make_scheduler, sample_tokens
from editflow_core.sampler import step_grid

from .fakes import ConstantModel, RatesFirstFake, TokenDependentModel

KAPPA = {
    "cubic": lambda t: t**3,
    "linear": lambda t: t,
    "cosine": lambda t: 1 - math.cos(math.pi * t / 2),
}
KAPPA_INV = {
    "cubic": lambda k: k ** (1 / 3),
    "linear": lambda k: k,
    "cosine": lambda k: 2 / math.pi * math.acos(1 - k),
}


def reference_grid(spec: str, steps: int, grid: str) -> tuple[list[float], list[float]]:
    """t_0 = 0 < ... < t_steps = 1 and f_k = (kappa(t_k+1) - kappa(t_k)) / (1 - kappa(t_k))."""
    if grid == "kappa":
        times = [0.0] + [KAPPA_INV[spec](k / steps) for k in range(1, steps)] + [1.0]
    else:
        times = [k / steps for k in range(steps + 1)]
    kappa = KAPPA[spec]
    fr = [(kappa(b) - kappa(a)) / (1 - kappa(a)) for a, b in zip(times, times[1:])]
    return times, fr


def reference_generate(model, spec, prefix, x0, p: SamplingParams, *, grid="kappa",
                       banned=(), eos=None, max_length=None):  # fmt: skip
    """One sequence, plain lists. Returns (tokens, completion, reason, counts, trace, steps)."""
    gen = torch.Generator().manual_seed(p.seed)
    times, fracs = reference_grid(spec, p.steps, grid)
    x, frozen = list(prefix) + list(x0), len(prefix)
    cap = (
        frozen + p.max_new_tokens
        if max_length is None
        else min(frozen + p.max_new_tokens, max_length)
    )
    counts, trace, capped, idle, step = [0, 0, 0], [], False, 0, 0
    while step < p.steps:
        n, t, f = len(x), times[step], fracs[step]
        last = step == p.steps - 1
        out = model(torch.tensor([x]), torch.ones(1, n, dtype=torch.bool), torch.tensor([t]))
        rates, ins_lg, sub_lg = out.rates[0].float(), out.ins_logits[0], out.sub_logits[0]
        u = torch.rand(5, n, generator=gen)
        f32 = torch.tensor(f, dtype=torch.float32)
        n_ins, dele, sub = [0] * n, [False] * n, [False] * n
        for i in range(n):
            li = rates[i, 0] if i >= frozen - 1 else torch.tensor(0.0)
            ld = rates[i, 1] if i >= frozen else torch.tensor(0.0)
            ls = rates[i, 2] if i >= frozen else torch.tensor(0.0)
            if last:
                n_ins[i] = int(li.floor()) + int(u[0, i] < li - li.floor())
            else:
                n_ins[i] = int(u[0, i] < min(li * f32, torch.tensor(1.0)))
            if u[1, i] < min((ld + ls) * f32, torch.tensor(1.0)):
                dele[i] = bool(u[2, i] * (ld + ls) < ld)
                sub[i] = not dele[i]
        room = cap - n + sum(dele)
        for i in range(n):  # the cap keeps the leftmost insertions
            kept = max(0, min(n_ins[i], room))
            capped |= kept < n_ins[i]
            n_ins[i] = kept
            room -= kept
        fired = sum(n_ins) + sum(dele) + sum(sub)
        if fired == 0:
            trace.append((step, t, []))
            idle += 1
        else:
            idle = 0

            def draw(logits, uu):
                row = logits.float().clone()[None]
                if banned:
                    row[:, list(banned)] = float("-inf")
                knobs = [torch.tensor([v]) for v in (p.temperature, p.top_k, p.top_p)]
                return int(sample_tokens(row, torch.tensor([float(uu)]), *knobs)[0])

            new = list(x)
            for i in range(n):
                if sub[i]:
                    new[i] = draw(sub_lg[i], u[4, i])
            extra = torch.rand(sum(max(c - 1, 0) for c in n_ins), generator=gen)
            k, added = 0, []
            for i in range(n):
                toks = []
                for j in range(n_ins[i]):
                    if j == 0:
                        toks.append(draw(ins_lg[i], u[3, i]))
                    else:
                        toks.append(draw(ins_lg[i], extra[k]))
                        k += 1
                added.append(toks)
            ops, result = [], []
            for i in range(n):
                if dele[i]:
                    ops.append(EditOp("del", i, None, x[i]))
                else:
                    if sub[i]:
                        ops.append(EditOp("sub", i, new[i], x[i]))
                    result.append(new[i])
                ops += [EditOp("ins", i, tok, None) for tok in added[i]]
                result += added[i]
            trace.append((step, t, ops))
            x = result
            counts = [counts[0] + sum(n_ins), counts[1] + sum(dele), counts[2] + sum(sub)]
        step += 1
        if p.idle_stop_steps and idle >= p.idle_stop_steps and times[step] >= p.idle_stop_after:
            break
    completion = x[frozen:]
    reason = "length" if capped or len(x) >= cap else "stop"
    if eos is not None and eos in completion:
        completion, reason = completion[: completion.index(eos)], "stop"
    return x, completion, reason, counts, trace, step


class Checked:
    """Passes calls through after checking the documented inputs: a right-padded batch (pad 0,
    the default pad_token_id), the attention mask true exactly on real tokens, no column of
    padding only, and t a (B,) float tensor."""

    def __init__(self, inner):
        self.inner, self.time_conditioned = inner, inner.time_conditioned

    @staticmethod
    def check(input_ids, attention_mask, t):
        mask = attention_mask.bool()
        assert mask[:, 0].all() and mask[:, -1].any()
        assert torch.equal(mask, mask.cummin(1).values)  # a prefix of each row
        assert (input_ids[mask] != 0).all() and (input_ids[~mask] == 0).all()
        assert t.shape == (input_ids.shape[0],) and t.dtype == torch.float32

    def __call__(self, input_ids, attention_mask, t, ins_rows=None, sub_rows=None):
        self.check(input_ids, attention_mask, t)
        return self.inner(input_ids, attention_mask, t, ins_rows, sub_rows)


class CheckedRatesFirst(Checked):
    def forward_rates(self, input_ids, attention_mask, t):
        self.check(input_ids, attention_mask, t)
        return self.inner.forward_rates(input_ids, attention_mask, t)


CASES = [
    # prefix, x0, params
    ([1], [11] * 4, dict(steps=12, seed=3, temperature=1.0)),
    ([1, 4, 2], [], dict(steps=20, seed=5, temperature=0.6, top_k=4)),
    ([1], [11] * 7, dict(steps=8, seed=8, temperature=1.3, top_p=0.7, max_new_tokens=9)),
    ([1, 9], [11, 11], dict(steps=16, seed=2, temperature=0.0)),
    ([1], [], dict(steps=5, seed=13, max_new_tokens=6)),
    # quiet steps between edits: the idle streak must restart after each edit
    ([1], [11] * 3, dict(steps=30, seed=21, idle_stop_steps=3, idle_stop_after=0.4)),
    ([1, 5], [11], dict(steps=30, seed=4, idle_stop_steps=1, idle_stop_after=0.6)),
]


@pytest.mark.parametrize("spec,grid", [("cubic", "kappa"), ("cubic", "uniform"),
                                       ("cosine", "kappa"), ("linear", "uniform")])  # fmt: skip
@pytest.mark.parametrize("rates_first", [False, True])
def test_batch_sampler_matches_the_one_sequence_reference(spec, grid, rates_first):
    inner = TokenDependentModel(vocab=12, ins=1.2, dele=0.5, sub=0.8, seed=1)
    model = (CheckedRatesFirst if rates_first else Checked)(
        RatesFirstFake(inner) if rates_first else inner
    )
    banned = (0, 11)
    sampler = BatchSampler(model, make_scheduler(spec), eos_token_id=7, max_length=12,
                           banned_token_ids=banned, time_grid=grid)  # fmt: skip
    params = [SamplingParams(trace=True, **kw) for _, _, kw in CASES]
    got = sampler.generate([c[0] for c in CASES], [c[1] for c in CASES], params)
    total_edits = 0
    for (prefix, x0, _), p, r in zip(CASES, params, got):
        tokens, completion, reason, counts, trace, steps = reference_generate(
            inner, spec, prefix, x0, p, grid=grid, banned=banned, eos=7, max_length=12
        )
        assert r.tokens == tokens
        assert r.completion == completion
        assert (r.n_ins, r.n_del, r.n_sub) == tuple(counts)
        assert r.steps == steps and r.key is None
        assert [(s.step, s.edits) for s in r.trace] == [(k, ops) for k, _, ops in trace]
        assert [s.t for s in r.trace] == pytest.approx([t for _, t, _ in trace], abs=1e-6)
        assert r.finish_reason == reason
        assert not set(r.tokens[len(prefix) :]) & set(banned) - set(x0)
        total_edits += sum(counts)
    assert total_edits > 20


def test_finish_reason_length_when_the_cap_drops_insertions_or_is_reached():
    # the anchor wants 5 insertions on the last step; the cap leaves room for 3
    model = ConstantModel(vocab=6, ins=5.0)
    (r,) = BatchSampler(model, make_scheduler("linear")).generate(
        [[1]], params=SamplingParams(steps=1, seed=0, max_new_tokens=3)
    )
    assert len(r.tokens) == 4 and r.finish_reason == "length" and r.n_ins == 3
    # exactly at the cap without dropping anything is also "length"
    model = ConstantModel(vocab=6, ins=3.0)
    (r,) = BatchSampler(model, make_scheduler("linear")).generate(
        [[1]], params=SamplingParams(steps=1, seed=0, max_new_tokens=3)
    )
    assert len(r.tokens) == 4 and r.finish_reason == "length" and r.n_ins == 3
    (r,) = BatchSampler(model, make_scheduler("linear")).generate(
        [[1]], params=SamplingParams(steps=1, seed=0, max_new_tokens=4)
    )
    assert len(r.tokens) == 4 and r.finish_reason == "stop"


def test_step_grid_matches_the_formulas():
    for spec in ("cubic", "linear", "cosine"):
        for grid in ("kappa", "uniform"):
            times, fr = step_grid(make_scheduler(spec), 7, grid)
            want_t, want_f = reference_grid(spec, 7, grid)
            assert times == pytest.approx(want_t, abs=1e-12)
            assert fr == pytest.approx(want_f, abs=1e-12)
            assert times[0] == 0.0 and times[-1] == 1.0 and fr[-1] == 1.0
    assert step_grid(make_scheduler("cubic"), 4)[1] == pytest.approx([1 / 4, 1 / 3, 1 / 2, 1.0])
    with pytest.raises(ValueError) as err:
        step_grid(make_scheduler("cubic"), 4, "log")
    assert str(err.value) == "time_grid must be one of kappa, uniform, got 'log'"
    with pytest.raises(ValueError) as err:
        BatchSampler(ConstantModel(), make_scheduler("cubic"), time_grid="log")
    assert str(err.value) == "time_grid must be one of kappa, uniform, got 'log'"


def test_queue_cancel_and_progress():
    s = BatchSampler(ConstantModel(vocab=8, sub=0.5), make_scheduler("cubic"))
    assert not s.has_work and s.num_running == 0 and s.num_pending == 0
    s.add([1], [3, 3], SamplingParams(steps=4, seed=0), key="a")
    s.add([1], [3], SamplingParams(steps=4, seed=1), key="b")
    s.add([1, 2], [], SamplingParams(steps=4, seed=2), key="c")
    assert s.has_work and s.num_pending == 3 and s.num_running == 0
    assert s.cancel("b") and s.num_pending == 2
    assert not s.cancel("b") and not s.cancel("zzz")
    assert s.running_keys() == []
    s.step()
    assert s.running_keys() == ["a", "c"] and s.num_pending == 0 and s.num_running == 2
    p = s.progress("c")
    assert p.step == 1 and p.t == pytest.approx(0.25 ** (1 / 3)) and p.tokens[:2] == [1, 2]
    assert s.progress("b") is None
    assert s.cancel("a") and s.running_keys() == ["c"]
    done = []
    while s.has_work:
        done += s.step()
    assert [r.key for r in done] == ["c"] and done[0].steps == 4
    assert not s.has_work and s.num_running == 0


def test_add_errors_and_defaults():
    s = BatchSampler(ConstantModel(), make_scheduler("linear"), max_length=5)
    with pytest.raises(ValueError) as err:
        s.add([])
    assert str(err.value) == "prefix must hold at least the anchor token"
    with pytest.raises(ValueError) as err:
        s.add([1, 2], [3, 3, 3, 3], SamplingParams(max_new_tokens=100))
    assert str(err.value) == "prefix + x0 is 6 tokens, more than the cap of 5"
    with pytest.raises(ValueError) as err:
        s.add([1, 2], [3, 3], SamplingParams(max_new_tokens=1))
    assert str(err.value) == "prefix + x0 is 4 tokens, more than the cap of 3"
    s.add([1, 2], [3, 3, 3])  # exactly at the cap: fine; default params
    assert s.num_pending == 1
    with pytest.raises(ValueError) as err:
        s.generate([[1], [1]], [[2]], None)
    assert str(err.value) == "generate: 2 prefixes, 1 x0, 2 suffixes and 2 params"
    with pytest.raises(ValueError) as err:
        s.generate([[1]], None, [SamplingParams(), SamplingParams()])
    assert str(err.value) == "generate: 1 prefixes, 1 x0, 1 suffixes and 2 params"


def test_unseeded_sequences_draw_their_seed_from_torch():
    model = ConstantModel(vocab=12, ins=1.0, sub=1.0, dele=0.3)

    def run(seed):
        torch.manual_seed(seed)
        (r,) = BatchSampler(model, make_scheduler("linear")).generate(
            [[1]], [[11] * 6], SamplingParams(steps=6)
        )
        return r.tokens

    assert run(0) == run(0)
    assert len({tuple(run(s)) for s in range(6)}) > 1


def test_default_time_conditioning_and_forward_counts():
    class Plain:  # no time_conditioned attribute: assumed to read t
        def __init__(self):
            self.inner, self.calls = ConstantModel(vocab=6), 0

        def __call__(self, *a, **k):
            self.calls += 1
            return self.inner(*a, **k)

    m = Plain()
    s = BatchSampler(m, make_scheduler("linear"), device="cpu")
    assert s.time_conditioned and s.device == torch.device("cpu")
    (r,) = s.generate([[1, 2]], params=SamplingParams(steps=5, seed=0))
    assert m.calls == 5 and r.forward_passes == 5 and s.forward_passes == 5
    m2 = ConstantModel(vocab=6)  # time_conditioned = False, nothing changes: one forward
    s2 = BatchSampler(m2, make_scheduler("linear"))
    assert not s2.time_conditioned
    (r,) = s2.generate([[1, 2]], params=SamplingParams(steps=5, seed=0))
    assert m2.calls == 1 and r.forward_passes == 1 and s2.forward_passes == 1
    s3 = BatchSampler(ConstantModel(vocab=6), make_scheduler("linear"), time_conditioned=True)
    (r,) = s3.generate([[1, 2]], params=SamplingParams(steps=5, seed=0))
    assert r.forward_passes == 5


def test_last_step_edits_counts_every_sequence():
    s = BatchSampler(ConstantModel(vocab=12, ins=0.0, sub=0.9), make_scheduler("linear"))
    for i in range(3):
        s.add([1], [11] * 5, SamplingParams(steps=1, seed=i, trace=True), key=i)
    done = s.step()
    assert s.last_step_edits == sum(len(r.trace[0].edits) for r in done) > 0
    assert s.last_step_edits == sum(r.n_sub for r in done)
    s.add([1], [], SamplingParams(steps=1, seed=0))
    s.step()
    assert s.last_step_edits == 0


def test_idle_stop_needs_both_the_streak_and_the_time():
    # nothing ever fires: the streak grows by one per step
    def run(**kw):
        (r,) = BatchSampler(
            ConstantModel(vocab=6), make_scheduler("linear"), time_grid="uniform"
        ).generate([[1, 2]], params=SamplingParams(steps=10, seed=0, **kw))
        return r.steps

    assert run() == 10
    assert run(idle_stop_steps=3, idle_stop_after=0.0) == 3
    assert run(idle_stop_steps=3, idle_stop_after=0.5) == 5  # t_5 = 0.5 >= 0.5
    assert run(idle_stop_steps=7, idle_stop_after=0.5) == 7
    assert run(idle_stop_steps=3, idle_stop_after=1.0) == 10


class UniformInsertAtAnchor:
    """Insertion rate lam at the anchor only, Q uniform over V tokens: a token is floor(V u)."""

    time_conditioned = False

    def __init__(self, lam, V=8):
        self.lam, self.V = lam, V

    def __call__(self, input_ids, attention_mask, t, ins_rows=None, sub_rows=None):
        from editflow_core import EditFlowOutput

        B, L = input_ids.shape
        rates = torch.zeros(B, L, 3)
        rates[:, 0, 0] = self.lam
        zeros = torch.zeros(B, L, self.V)
        return EditFlowOutput(rates, zeros, zeros)


def test_several_insertions_in_one_gap_draw_fresh_uniforms():
    """On the last step the anchor gets floor(3.0) = 3 insertions: the first token at u[3, 0],
    the next two at fresh uniforms drawn after the (5, n) block, in order (sampler._draw)."""
    V, n = 8, 20
    res = BatchSampler(UniformInsertAtAnchor(3.0, V), make_scheduler("cubic")).generate(
        [[1]] * n, params=[SamplingParams(steps=1, seed=s) for s in range(n)]
    )
    same = 0
    for s, r in enumerate(res):
        g = torch.Generator().manual_seed(s)
        u = torch.rand(5, 1, generator=g)
        extra = torch.rand(2, generator=g)
        want = [int(V * float(x)) for x in (u[3, 0], extra[0], extra[1])]
        assert r.tokens == [1, *want]
        same += want[0] == want[1]
    assert same < n // 2  # the second token is not a copy of the first


class PhaseModel:
    """Insertions (rate 3 everywhere) before t = 0.5, deletions (rate 1) after."""

    time_conditioned = True

    def __call__(self, input_ids, attention_mask, t, ins_rows=None, sub_rows=None):
        from editflow_core import EditFlowOutput

        B, L = input_ids.shape
        rates = torch.zeros(B, L, 3)
        early = (t < 0.5)[:, None]
        rates[..., 0] = torch.where(early, 3.0, 0.0)
        rates[..., 1] = torch.where(early, 0.0, 1.0)
        zeros = torch.zeros(B, L, 6)
        return EditFlowOutput(rates, zeros, zeros)


def test_a_sequence_capped_early_finishes_with_length_even_if_it_shrinks_later():
    """The cap drops insertions at t = 0 (x0 fills the room); later every token is deleted:
    finish_reason stays "length" (the cap was hit), though the result is short."""
    sampler = BatchSampler(PhaseModel(), make_scheduler("linear"), time_grid="uniform")
    res = sampler.generate(
        [[1]] * 8, [[5, 5, 5]] * 8,
        [SamplingParams(steps=4, seed=s, max_new_tokens=3, trace=True) for s in range(8)],
    )  # fmt: skip
    for r in res:
        assert r.tokens == [1] and r.n_del == 3 and r.n_ins == 0
        assert r.finish_reason == "length"


def test_books_before_the_first_step_and_traces_only_on_request():
    s = BatchSampler(ConstantModel(vocab=12, sub=0.9), make_scheduler("linear"))
    assert s.last_step_edits == 0 and s.forward_passes == 0
    params = [SamplingParams(steps=2, seed=0), SamplingParams(steps=2, seed=1, trace=True)]
    res = s.generate([[1], [1]], [[11] * 3] * 2, params)
    assert res[0].trace is None and len(res[1].trace) == 2


def test_unseeded_sequences_get_many_different_seeds():
    torch.manual_seed(0)
    n = 400
    res = BatchSampler(ConstantModel(vocab=12, sub=1.0), make_scheduler("linear")).generate(
        [[1]] * n, [[11] * 6] * n, SamplingParams(steps=1)
    )
    # 12^6 possible texts: seeds drawn from a small range would repeat texts
    assert len({tuple(r.tokens) for r in res}) > 0.95 * n
