"""The collator's conditioning options: prompts dropped with probability cond_drop, and random
conditioning prefixes (a share c^3 of the chunk, c ~ U[0, 1]) for pretraining."""

from __future__ import annotations

import math

import pytest
import torch
from editflow_core import make_scheduler, make_x0_sampler
from editflow_train import EditFlowCollator


def collator(**kw) -> EditFlowCollator:
    return EditFlowCollator(
        x0_sampler=make_x0_sampler("empty"), scheduler=make_scheduler("cubic"), pad_token_id=0,
        mask_token_id=3, vocab_size=50, **kw,
    )  # fmt: skip


@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_cond_drop_drops_the_prompt_with_its_probability(p):
    torch.manual_seed(0)
    c = collator(cond_drop=p)
    x1, f, n = [1, 7, 8, 9, 20, 21], 4, 3000
    out = [c.conditioning(x1, f) for _ in range(n)]
    dropped = [o for o in out if o[1] == 1]
    assert all(o == ([1, 20, 21], 1) for o in dropped)  # anchor + completion, nothing frozen
    assert all(o == (x1, f) for o in out if o[1] != 1)
    assert abs(len(dropped) / n - p) <= 4 * math.sqrt(p * (1 - p) / n) + 1e-9
    assert c.conditioning([1, 5, 6], 1) == ([1, 5, 6], 1)  # no prompt: nothing to drop


def test_cond_prefix_freezes_a_c_cubed_share():
    """P(frozen - 1 <= k) = P(floor(c^3 m) <= k) = min(1, ((k + 1) / m)^(1/3)) for m tokens."""
    torch.manual_seed(1)
    c = collator(cond_prefix=True)
    m, n = 40, 4000
    prefix = [c.conditioning(list(range(1, m + 2)), 1)[1] - 1 for _ in range(n)]
    for k in (0, 4, 13, 30):
        want = min(1.0, ((k + 1) / m) ** (1 / 3))
        got = sum(x <= k for x in prefix) / n
        assert abs(got - want) < 4 * math.sqrt(want * (1 - want) / n) + 1e-3, (k, got, want)
    # the batch keeps the prefix frozen: no edit inside it
    torch.manual_seed(2)
    out = c([{"input_ids": list(range(1, m + 2)), "frozen": 1}] * 16)
    assert (out["frozen"] >= 1).all() and (out["frozen"] > 1).any()
    assert (out["edit_pos"] >= out["frozen"][out["edit_batch"]] - 1).all()
