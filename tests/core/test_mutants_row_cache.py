"""RowCache and RatesFirst on their own, from row_cache.py's and model_protocol.py's docstrings."""

from __future__ import annotations

import torch
from editflow_core import EditFlowOutput, RatesFirst
from editflow_core.row_cache import RowCache


class Forward:
    """A RatesFirst over known tensors that records every token_logits call."""

    def __init__(self, rates: torch.Tensor, V: int = 4, offset: float = 0.0):
        B, L, _ = rates.shape
        self.ins = torch.arange(B * L * V, dtype=torch.float32).view(B, L, V) + offset
        self.sub = -self.ins
        self.calls: list[tuple[list[int], list[int]]] = []

        def token_logits(ins_rows, sub_rows):
            self.calls.append((ins_rows.tolist(), sub_rows.tolist()))
            return self.ins.flatten(0, 1)[ins_rows], self.sub.flatten(0, 1)[sub_rows]

        self.out = RatesFirst(rates, token_logits)


def test_rates_first_from_output_indexes_flat_rows():
    rates = torch.rand(2, 3, 3)
    ins = torch.arange(2 * 3 * 5, dtype=torch.float32).view(2, 3, 5)
    sub = ins + 100
    rf = RatesFirst.from_output(EditFlowOutput(rates, ins, sub))
    assert rf.rates is rates
    li, ls = rf.token_logits(torch.tensor([4, 0]), torch.tensor([5]))
    assert torch.equal(li, torch.stack([ins[1, 1], ins[0, 0]]))
    assert torch.equal(ls, sub[1, 2][None])


def test_add_keep_fit_and_store_every_row():
    cache = RowCache(torch.device("cpu"))
    assert cache.rates.shape == (0, 0, 3)
    cache.add_rows(3)
    assert cache.rates.shape == (3, 0, 3) and cache.stale == [True] * 3
    assert cache.source == [-1] * 3 and cache.index == [0] * 3
    cache.fit(4)
    assert cache.rates.shape == (3, 4, 3) and (cache.rates == 0).all()
    f = Forward(torch.rand(3, 4, 3).double())
    cache.store([0, 1, 2], f.out)
    assert cache.rates.dtype == torch.float32 and torch.equal(cache.rates, f.out.rates.float())
    assert cache.stale == [False] * 3 and cache.source == [0] * 3 and cache.index == [0, 1, 2]
    assert cache.widths == [4] and cache.outs == [f.out]
    cache.fit(2)
    assert torch.equal(cache.rates, f.out.rates.float()[:, :2])
    cache.fit(5)
    assert cache.rates.shape == (3, 5, 3) and (cache.rates[:, 2:] == 0).all()
    cache.keep([2, 0], torch.tensor([2, 0]))
    assert torch.equal(cache.rates[:, :2], f.out.rates.float()[[2, 0], :2])
    assert cache.index == [2, 0] and cache.source == [0, 0] and cache.stale == [False, False]


def test_partial_store_token_logits_and_pruning():
    cache = RowCache(torch.device("cpu"))
    cache.add_rows(3)
    cache.fit(3)
    first = Forward(torch.rand(3, 3, 3), offset=0.0)
    cache.store([0, 1, 2], first.out)
    cache.stale = [False, True, False]
    second = Forward(torch.rand(1, 2, 3), offset=1000.0)  # row 1 alone, narrower
    cache.store([1], second.out)
    assert cache.source == [0, 1, 0] and cache.index == [0, 0, 2] and cache.widths == [3, 2]
    assert cache.stale == [False, False, False]
    assert torch.equal(cache.rates[1, :2], second.out.rates[0]) and (cache.rates[1, 2] == 0).all()
    assert torch.equal(cache.rates[0], first.out.rates[0])
    # ins at (1, 1), (0, 2), (2, 0); sub at (1, 0), (2, 1): in order, each from its forward
    ib, ii = torch.tensor([1, 0, 2]), torch.tensor([1, 2, 0])
    sb, si = torch.tensor([1, 2]), torch.tensor([0, 1])
    li, ls = cache.token_logits(ib, ii, sb, si)
    assert torch.equal(li, torch.stack([second.ins[0, 1], first.ins[0, 2], first.ins[2, 0]]))
    assert torch.equal(ls, torch.stack([second.sub[0, 0], first.sub[2, 1]]))
    # one call per forward, with flat rows index * width + position
    assert first.calls == [([0 * 3 + 2, 2 * 3 + 0], [2 * 3 + 1])]
    assert second.calls == [([0 * 2 + 1], [0 * 2 + 0])]
    # nothing fired: empty logits of the right width
    li, ls = cache.token_logits(*(torch.zeros(0, dtype=torch.long) for _ in range(4)))
    assert li.shape == (0, 4) and ls.shape == (0, 4)
    # dropping the rows of the first forward drops that forward
    cache.keep([1], torch.tensor([1]))
    assert cache.outs == [second.out] and cache.widths == [2] and cache.source == [0]
    none = torch.zeros(0, dtype=torch.long)
    li, _ = cache.token_logits(torch.tensor([0]), torch.tensor([1]), none, none)
    assert torch.equal(li[0], second.ins[0, 1])


def test_one_forward_serves_every_row_in_one_call():
    cache = RowCache(torch.device("cpu"))
    cache.add_rows(2)
    f = Forward(torch.rand(2, 3, 3))
    cache.fit(3)
    cache.store([0, 1], f.out)
    cache.keep([1, 0], torch.tensor([1, 0]))  # rows swap: index follows them
    li, ls = cache.token_logits(torch.tensor([0, 1]), torch.tensor([2, 0]), torch.tensor([1]),
                                torch.tensor([1]))  # fmt: skip
    assert torch.equal(li, torch.stack([f.ins[1, 2], f.ins[0, 0]]))
    assert torch.equal(ls, f.sub[0, 1][None])
    assert f.calls == [([1 * 3 + 2, 0 * 3 + 0], [0 * 3 + 1])]


def test_rows_added_to_a_running_cache_are_stale_until_computed():
    cache = RowCache(torch.device("cpu"))
    cache.add_rows(2)
    cache.fit(3)
    first = Forward(torch.rand(2, 3, 3))
    cache.store([0, 1], first.out)
    cache.add_rows(1)  # a sequence joins
    assert cache.stale == [False, False, True] and cache.source == [0, 0, -1]
    assert cache.rates.shape == (3, 3, 3) and (cache.rates[2] == 0).all()
    cache.keep([0, 2], torch.tensor([0, 2]))  # row 1 leaves: the first forward still serves row 0
    assert cache.source == [0, -1] and cache.outs == [first.out] and cache.stale == [False, True]
    late = Forward(torch.rand(1, 2, 3), offset=500.0)
    cache.store([1], late.out)
    assert cache.source == [0, 1] and cache.index == [0, 0] and cache.widths == [3, 2]
    none = torch.zeros(0, dtype=torch.long)
    li, _ = cache.token_logits(torch.tensor([0, 1]), torch.tensor([2, 1]), none, none)
    assert torch.equal(li, torch.stack([first.ins[0, 2], late.ins[0, 1]]))


def test_pruning_keeps_uncomputed_rows_marked():
    cache = RowCache(torch.device("cpu"))
    cache.add_rows(2)
    cache.fit(3)
    a, b = Forward(torch.rand(2, 3, 3)), Forward(torch.rand(1, 3, 3), offset=100.0)
    cache.store([0, 1], a.out)
    cache.store([1], b.out)  # row 1 recomputed alone
    cache.add_rows(1)
    cache.store([0], Forward(torch.rand(1, 3, 3), offset=200.0).out)  # a's last row goes
    assert len(cache.outs) == 2 and cache.source == [1, 0, -1]
    cache.keep([1, 2], torch.tensor([1, 2]))  # drops the forward of row 0
    assert cache.outs == [b.out] and cache.source == [0, -1] and cache.stale == [False, True]
