"""Classifier-free guidance: the combined rates and token distributions against a reference
written from the rule, g = 0 as the plain sampler, and what guidance does to samples."""

import math

import pytest
import torch
from editflow_core import BatchSampler, EditFlowOutput, RatesFirst, SamplingParams, make_scheduler
from editflow_core.guidance import guided_forward

from .fakes import RatesFirstFake, TokenDependentModel

V = 12


class PositionalModel:
    """Rates and logits depending on token, position and t (so a wrong shift shows)."""

    time_conditioned = True

    def __init__(self):
        g = torch.Generator().manual_seed(5)
        self.ins = torch.randn(V, V, generator=g)
        self.sub = torch.randn(V, V, generator=g)

    def full(self, ids, t):
        pos = torch.arange(ids.shape[1])[None].float()
        base = (ids.float() % 5 + 1) / 4 + 0.3 * torch.sin(pos) + t[:, None]
        rates = torch.stack([base, (2.5 - base).abs(), 0.5 * base], -1).clamp_min(0.01)
        shift = 0.2 * pos[..., None]
        return rates, self.ins[ids] + shift, self.sub[ids] - shift

    def __call__(self, ids, mask, t, frozen):
        rates, ins, sub = self.full(ids, t)
        rates = rates * mask[..., None]

        def token_logits(ins_rows, sub_rows):
            return ins.flatten(0, 1)[ins_rows], sub.flatten(0, 1)[sub_rows]

        return RatesFirst(rates, token_logits)


def reference(model, row, f, g, t):
    """Rates (n, 3) and ins / sub log-probabilities (n, V) of one row under the rule, from two
    separate forwards: the row, and anchor + the tokens after its prompt."""
    rc, ic, sc = model.full(torch.tensor([row]), torch.tensor([t]))
    ru, iu, su = model.full(torch.tensor([[row[0], *row[f:]]]), torch.tensor([t]))
    rates, ins, sub = rc[0].clone(), ic[0].clone(), sc[0].clone()
    for i in range(f - 1, len(row)):
        j = i - (f - 1)
        for op in range(3):
            rates[i, op] = rc[0, i, op] ** (1 + g) * ru[0, j, op] ** (-g)
        ins[i] = (1 + g) * torch.log_softmax(ic[0, i], -1) - g * torch.log_softmax(iu[0, j], -1)
        sub[i] = (1 + g) * torch.log_softmax(sc[0, i], -1) - g * torch.log_softmax(su[0, j], -1)
    return rates, ins, sub


@pytest.mark.parametrize("seed", range(4))
def test_guided_forward_matches_the_rule(seed):
    gen = torch.Generator().manual_seed(seed)
    model = PositionalModel()
    lengths, frozen = [9, 5, 12, 7], [3, 1, 5, 2]
    scales = [1.5, 2.0, 0.0, 0.7]  # row 1: no prompt; row 2: g = 0, so both plain
    W = max(lengths)
    ids = torch.zeros(4, W, dtype=torch.long)
    for b, n in enumerate(lengths):
        ids[b, :n] = torch.randint(1, V, (n,), generator=gen)
    mask = torch.arange(W)[None] < torch.tensor(lengths)[:, None]
    t = torch.rand(4, generator=gen)
    out = guided_forward(model, ids, mask, t, frozen, scales, pad_token_id=0)
    flat = torch.arange(4 * W).reshape(4, W)[mask]
    ins, sub = out.token_logits(flat, flat.flip(0))
    sub = sub.flip(0)
    k = 0
    for b, n in enumerate(lengths):
        row = ids[b, :n].tolist()
        g = scales[b] if frozen[b] > 1 else 0.0
        want_r, want_i, want_s = reference(model, row, frozen[b], g, float(t[b]))
        torch.testing.assert_close(out.rates[b, :n], want_r, rtol=1e-4, atol=1e-6)
        got_i, got_s = ins[k : k + n], sub[k : k + n]
        if g == 0:  # raw logits, as the plain sampler gets them
            _, raw_i, raw_s = model.full(torch.tensor([row]), t[b : b + 1])
            torch.testing.assert_close(got_i, raw_i[0])
            torch.testing.assert_close(got_s, raw_s[0])
        else:
            torch.testing.assert_close(got_i, want_i, rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(got_s, want_s, rtol=1e-4, atol=1e-4)
        k += n


def test_scale_zero_is_the_plain_sampler_exactly():
    """g = 0 runs no unconditional rows (batch of 3 at every forward) and gives the samples of
    parameters without guidance; g > 0 adds one unconditional row per prompted sequence."""

    def run(**guidance):
        inner = TokenDependentModel(ins=0.5, dele=0.3, sub=0.4, seed=2, time_conditioned=True)
        model = RatesFirstFake(inner)
        sampler = BatchSampler(model, make_scheduler("cubic"))
        prefixes = [[1, 4, 5, 6], [1], [1, 3, 3]]  # the second has no prompt
        params = [SamplingParams(steps=10, seed=i, max_new_tokens=12, **guidance) for i in range(3)]
        return [r.tokens for r in sampler.generate(prefixes, params=params)], model.batch_sizes

    plain, plain_sizes = run()
    zero, zero_sizes = run(guidance_scale=0.0)
    guided, guided_sizes = run(guidance_scale=2.0)
    assert zero == plain and zero_sizes == plain_sizes and set(plain_sizes) == {3}
    assert set(guided_sizes) == {5} and guided != plain


class PromptAwareModel:
    """Q_ins after the last token: token 7 with probability 0.45 (0.3 without a prompt) and the
    rest spread evenly; one insertion is pending at the end. Guidance must sharpen towards 7."""

    time_conditioned = False

    def __init__(self):
        self.calls = 0

    def __call__(self, ids, mask, t, ins_rows=None, sub_rows=None):
        self.calls += 1
        B, L = ids.shape
        n = mask.sum(1)
        rates = torch.zeros(B, L, 3)
        rates[torch.arange(B), n - 1, 0] = (n <= 3).float()  # insert once after the prompt/anchor
        prompted = (ids == 9).any(1)  # the prompt is token 9
        p7 = torch.where(prompted, 0.45, 0.3)
        probs = ((1 - p7) / (V - 3))[:, None].expand(B, V).clone()
        probs[:, :2] = 1e-9
        probs[:, 7] = p7
        logits = probs.log()[:, None].expand(B, L, V)
        return EditFlowOutput(rates, logits, logits)


@pytest.mark.parametrize("g,low,high", [(0.0, 0.40, 0.50), (1.0, 0.55, 0.66), (3.0, 0.75, 0.88)])
def test_guidance_sharpens_the_conditional_distribution(g, low, high):
    """Analytically P~(7) = p_c^(1+g) p_u^-g / Z: 0.45, 0.604, 0.816 for g = 0, 1, 3."""
    sampler = BatchSampler(PromptAwareModel(), make_scheduler("linear"))
    n = 1500
    params = [SamplingParams(steps=2, seed=i, guidance_scale=g, max_new_tokens=4) for i in range(n)]
    results = sampler.generate([[1, 9, 9]] * n, params=params)
    share = sum(r.tokens[3:4] == [7] for r in results) / n
    p_c, p_u = 0.45, 0.3
    rest_c, rest_u = (1 - p_c) / (V - 3), (1 - p_u) / (V - 3)
    want = p_c ** (1 + g) * p_u**-g
    want /= want + (V - 3) * rest_c ** (1 + g) * rest_u**-g
    assert low < want < high and abs(share - want) < 4 * math.sqrt(want * (1 - want) / n)
