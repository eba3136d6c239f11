"""Training for editing: fill-in-the-middle rows, corrupted x0 (an edit coupling), and draft ->
final pairs from a source column."""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset
from editflow_core import PathSample, align, make_scheduler, make_x0_sampler
from editflow_testing.reference import apply_edits as apply
from editflow_train.chunking import pretraining_dataset
from editflow_train.collator import EditFlowCollator

from .test_data import tokenizer  # noqa: F401 (fixture)

SPECIAL = (0, 1, 2)


def collator(x0="empty", **kw) -> EditFlowCollator:
    return EditFlowCollator(
        make_x0_sampler(x0), make_scheduler("cubic"), pad_token_id=0, mask_token_id=3,
        vocab_size=40, special_ids=SPECIAL, **kw,
    )  # fmt: skip


def path_of(fields: dict) -> PathSample:
    return PathSample(**fields)


def rows(path: PathSample):
    for b in range(path.x_t.shape[0]):
        n = int(path.attention_mask[b].sum())
        sel = path.edit_batch == b
        edits = zip(path.edit_op[sel].tolist(), path.edit_pos[sel].tolist(),
                    path.edit_token[sel].tolist())  # fmt: skip
        yield b, path.x_t[b, :n].tolist(), list(edits)


def test_fim_rows_keep_a_prefix_and_suffix_given_and_edit_only_the_middle():
    torch.manual_seed(0)
    c = collator(fim=1.0, cond_drop=0.0)
    x1 = [1, 10, 11, 12, 13, 14, 15, 16, 17, 2]
    ex = [{"input_ids": x1, "frozen": 2}] * 64
    path = path_of(c(ex))
    with_suffix = 0
    for b, x_t, edits in rows(path):
        assert apply(x_t, edits) == x1
        given = [tok for tok, g in zip(x_t, path.given_mask[b].tolist()) if g]
        k = next(i for i in range(len(given)) if given[: i + 1] != x1[: i + 1]) if (
            given != x1[: len(given)]
        ) else len(given)  # fmt: skip
        head, tail = given[:k], given[k:]
        assert head == x1[: len(head)] and len(head) >= 2  # the prompt is always given
        assert tail == x1[len(x1) - len(tail) :]  # a suffix of x1
        with_suffix += bool(tail)
        for op, pos, _ in edits:  # edits only between head and tail
            assert len(head) - 1 <= pos if op == 0 else len(head) <= pos
            assert pos < len(x_t) - len(tail)
    assert with_suffix > 32  # most rows got a suffix


def test_corrupt_x0_is_aligned_optimally_and_needs_x1():
    torch.manual_seed(1)
    c = collator(edit_x0=make_x0_sampler("corrupt[p:0.3]"), edit_share=1.0)
    x1 = [1, *range(10, 30), 2]
    fields = c([{"input_ids": x1}] * 16)
    path = path_of(fields)
    assert (path.x_t[:, 0] == 1).all()
    changed = 0
    for _, x_t, edits in rows(path):
        assert apply(x_t, edits) == x1
        z0, z1 = align(x_t[1:], x1[1:])
        assert len(edits) == sum(a != b for a, b in zip(z0, z1))  # optimal: no wasted edit
        assert set(x_t[1:]) <= set(x1[1:])  # new tokens come from the batch's own tokens
        changed += bool(edits)
    assert changed > 8
    with pytest.raises(ValueError, match="edit_x0"):
        collator("corrupt[p:0.2]")
    with pytest.raises(ValueError, match="drawn from x1"):
        collator(edit_x0=make_x0_sampler("empty"), edit_share=0.5)
    with pytest.raises(ValueError, match="fim must be a probability"):
        collator(fim=1.5)
    with pytest.raises(ValueError, match="training only"):
        make_x0_sampler("corrupt[p:0.2]").sample()
    with pytest.raises(ValueError, match=r"p in \(0, 1\]"):
        make_x0_sampler("corrupt[p:0]")


def test_corrupt_rate_is_about_p_edits_per_token():
    sampler = make_x0_sampler("corrupt[p:0.2]")
    g = torch.Generator().manual_seed(0)
    x1 = list(range(3, 53))
    total = 0
    for _ in range(400):
        x0 = sampler.sample(g, vocab_size=60, exclude_ids=SPECIAL, x1=x1).tolist()
        z0, z1 = align(x0, x1)
        total += sum(a != b for a, b in zip(z0, z1))
    rate = total / (400 * len(x1))
    assert 0.17 < rate < 0.21, rate  # p = 0.2, less the odd edit that cancels another
    assert str(sampler) == "corrupt[p:0.2]"


def test_source_column_pairs_train_the_draft_into_the_text(tokenizer):  # noqa: F811
    ds = Dataset.from_dict({"text": ["To be or not", "x" * 400], "draft": ["Tobe or nut", "y"]})
    out = pretraining_dataset(
        ds, tokenizer, anchor_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, text_field="text", max_length=64,
        source_field="draft",
    )  # fmt: skip
    assert len(out) == 1  # the long pair is dropped, never cut
    ex = out[0]
    enc = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"]  # noqa: E731
    assert ex["input_ids"] == [tokenizer.bos_token_id, *enc("To be or not"), tokenizer.eos_token_id]
    assert ex["x0_ids"] == [*enc("Tobe or nut"), tokenizer.eos_token_id]
    torch.manual_seed(0)
    path = path_of(collator()([ex]))
    for _, x_t, edits in rows(path):
        assert apply(x_t, edits) == ex["input_ids"]
    with pytest.raises(ValueError, match="source field 'missing'"):
        pretraining_dataset(
            ds, tokenizer, anchor_token_id=1, eos_token_id=2, text_field="text",
            max_length=64, source_field="missing",
        )  # fmt: skip
