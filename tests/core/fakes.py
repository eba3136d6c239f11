"""Fake Edit Flow models with known rates, for sampler tests."""

import torch
from editflow_core import EditFlowOutput, RatesFirst


class ConstantModel:
    """Rates and logits that depend only on the token at each position (rows never interact)."""

    def __init__(self, vocab=12, ins=0.0, dele=0.0, sub=0.0, seed=0, time_conditioned=False):
        g = torch.Generator().manual_seed(seed)
        self.table_ins = torch.randn(vocab, vocab, generator=g)
        self.table_sub = torch.randn(vocab, vocab, generator=g)
        self.rates = torch.tensor([ins, dele, sub])
        self.time_conditioned = time_conditioned
        self.calls = 0

    def __call__(self, input_ids, attention_mask, t, ins_rows=None, sub_rows=None):
        self.calls += 1
        B, L = input_ids.shape
        rates = self.rates.expand(B, L, 3).clone()
        return EditFlowOutput(rates, self.table_ins[input_ids], self.table_sub[input_ids])


class TokenDependentModel(ConstantModel):
    """Rates vary with the token id and position, so batch/padding bugs show up."""

    def __call__(self, input_ids, attention_mask, t, ins_rows=None, sub_rows=None):
        self.calls += 1
        pos = torch.arange(input_ids.shape[1])[None].float()
        base = (input_ids.float() % 5 + 1) / 5 + 0.1 * torch.cos(pos)  # (B, L)
        rates = torch.stack(
            [base * self.rates[0], (1.2 - base).abs() * self.rates[1], base * self.rates[2]], -1
        )
        return EditFlowOutput(rates, self.table_ins[input_ids], self.table_sub[input_ids])


class OracleSubModel:
    """Substitutes every position i >= 1 whose token differs from target[i] by target[i]."""

    time_conditioned = False

    def __init__(self, target, vocab, rate=1.0):  # realistic: sure of one pending substitution
        self.target = torch.tensor(target)
        self.vocab, self.rate = vocab, rate

    def __call__(self, input_ids, attention_mask, t, ins_rows=None, sub_rows=None):
        B, L = input_ids.shape
        tgt = torch.zeros(L, dtype=torch.long)
        n = min(L, len(self.target))
        tgt[:n] = self.target[:n]
        wrong = (input_ids != tgt[None]).float()  # (B, L)
        rates = torch.zeros(B, L, 3)
        rates[..., 2] = self.rate * wrong
        sub = torch.full((B, L, self.vocab), -30.0)
        sub.scatter_(2, tgt[None, :, None].expand(B, L, 1), 30.0)
        return EditFlowOutput(rates, torch.zeros(B, L, self.vocab), sub)


class OracleAppendModel:
    """Inserts target[len(x)] after the last position until x == target, at the realistic
    rate: the number of tokens still missing there (the expected number of pending insertions)."""

    time_conditioned = False

    def __init__(self, target, vocab):
        self.target, self.vocab = list(target), vocab

    def __call__(self, input_ids, attention_mask, t, ins_rows=None, sub_rows=None):
        B, L = input_ids.shape
        rates = torch.zeros(B, L, 3)
        ins = torch.full((B, L, self.vocab), -30.0)
        lengths = attention_mask.long().sum(1).tolist()
        for b, n in enumerate(lengths):
            if n < len(self.target):
                rates[b, n - 1, 0] = len(self.target) - n
                ins[b, n - 1, self.target[n]] = 30.0
        return EditFlowOutput(rates, ins, torch.zeros(B, L, self.vocab))


class AnchorInsertModel:
    """Insertion rate lam at position 0 only: one Bernoulli per step, known law."""

    time_conditioned = False

    def __init__(self, lam, vocab=5):
        self.lam, self.vocab = lam, vocab

    def __call__(self, input_ids, attention_mask, t, ins_rows=None, sub_rows=None):
        B, L = input_ids.shape
        rates = torch.zeros(B, L, 3)
        rates[:, 0, 0] = self.lam
        return EditFlowOutput(rates, torch.zeros(B, L, self.vocab), torch.zeros(B, L, self.vocab))


class RatesFirstFake:
    """A ``RatesFirstModel`` over a plain fake: token logits only at the rows asked for.

    Records the batch size of every forward and of every token-logit request, so tests can see
    which rows were computed.
    """

    def __init__(self, inner):
        self.inner = inner
        self.time_conditioned = inner.time_conditioned
        self.batch_sizes: list[int] = []

    def __call__(self, *args, **kwargs):
        return self.inner(*args, **kwargs)

    def forward_rates(self, input_ids, attention_mask, t):
        self.batch_sizes.append(input_ids.shape[0])
        out = self.inner(input_ids, attention_mask, t)

        def token_logits(ins_rows, sub_rows):
            return out.ins_logits.flatten(0, 1)[ins_rows], out.sub_logits.flatten(0, 1)[sub_rows]

        return RatesFirst(out.rates, token_logits)
