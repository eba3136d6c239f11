"""Given spans anywhere: paths and the sampler never change a given token, insert only inside
holes, and the sampler gives the same sequences alone and batched.

Given tokens carry ids >= 50 that the models below never draw, so every check can find them by
value, independently of the layout flags under test."""

import pytest
import torch
from editflow_core import (
    DEL,
    INS,
    SUB,
    BatchSampler,
    Given,
    Hole,
    SamplingParams,
    align_layouts,
    make_scheduler,
    sample_path,
    sequence_layout,
)
from editflow_core.guidance import unconditional_rows
from editflow_core.spans import FREE, GIVEN, OPEN, X0
from editflow_testing.reference import apply_edits
from hypothesis import given, settings
from hypothesis import strategies as st

from .fakes import OracleSubModel, TokenDependentModel

hole_tokens = st.lists(st.integers(1, 6), max_size=6)


@st.composite
def layouts(draw):
    """[Given(anchor...), then Holes and Givens in any order]; given ids are unique, >= 50."""
    next_id = iter(range(50, 400))
    pieces = [Given([next(next_id) for _ in range(draw(st.integers(1, 3)))])]
    for _ in range(draw(st.integers(0, 5))):
        if draw(st.booleans()):
            pieces.append(Hole(draw(hole_tokens), draw(hole_tokens)))
        else:
            pieces.append(Given([next(next_id) for _ in range(draw(st.integers(1, 3)))]))
    return pieces


def flatten(pieces, side):
    out = []
    for p in pieces:
        out += list(p.tokens) if isinstance(p, Given) else list(getattr(p, side))
    return out


def insertable_after(pieces, x_t):
    """Reference: the x_t positions an insertion may follow, from the layout's definition.

    A hole token (id < 50) always; a given token only when it ends a given piece that a hole
    follows (given pieces that touch are one span: no hole between them)."""
    opens = set()
    for k, p in enumerate(pieces):
        if isinstance(p, Given) and k + 1 < len(pieces) and isinstance(pieces[k + 1], Hole):
            opens.add(p.tokens[-1])
    return {i for i, tok in enumerate(x_t) if tok < 50 or tok in opens}


@given(
    st.lists(layouts(), min_size=1, max_size=4),
    st.sampled_from(["optimal", "noise"]),
    st.integers(0, 10**6),
    st.sampled_from([None, 0.0, 0.5, 0.999]),
)
@settings(max_examples=300, deadline=None)
def test_paths_edit_only_inside_holes(rows, coupling, seed, fixed_t):
    g = torch.Generator().manual_seed(seed)
    batch = align_layouts(rows, coupling=coupling, generator=g)
    t = None if fixed_t is None else torch.full((len(rows),), fixed_t)
    path = sample_path(batch, make_scheduler("cubic"), t, generator=g)
    for b, pieces in enumerate(rows):
        n = int(path.attention_mask[b].sum())
        x_t = path.x_t[b, :n].tolist()
        given_ids = [tok for p in pieces if isinstance(p, Given) for tok in p.tokens]
        assert [tok for tok in x_t if tok >= 50] == given_ids  # all there, in order
        assert path.given_mask[b, :n].tolist() == [tok >= 50 for tok in x_t]
        allowed = insertable_after(pieces, x_t)
        assert {i for i in range(n) if path.rate_mask[b, i, INS]} == allowed
        assert {i for i in range(n) if path.rate_mask[b, i, DEL]} == {
            i for i, tok in enumerate(x_t) if tok < 50
        }
        assert torch.equal(path.rate_mask[b, :, DEL], path.rate_mask[b, :, SUB])
        assert not path.rate_mask[b, n:].any()
        sel = path.edit_batch == b
        edits = list(
            zip(
                path.edit_op[sel].tolist(),
                path.edit_pos[sel].tolist(),
                path.edit_token[sel].tolist(),
            )
        )
        assert apply_edits(x_t, edits) == flatten(pieces, "x1")
        for op, pos, _ in edits:
            assert path.rate_mask[b, pos, op]
        rsel = path.rev_batch == b
        for op, pos in zip(path.rev_op[rsel].tolist(), path.rev_pos[rsel].tolist()):
            assert path.rate_mask[b, pos, op]
        hole_x1 = sum(len(p.x1) for p in pieces if isinstance(p, Hole))
        assert int(path.target_len[b]) == hole_x1
        first_hole = next((k for k, p in enumerate(pieces) if isinstance(p, Hole)), len(pieces))
        assert int(batch.frozen[b]) == sum(len(p.tokens) for p in pieces[:first_hole])


def test_align_layouts_columns_and_errors():
    batch = align_layouts(
        [[Given([50, 51]), Hole([], []), Given([52]), Hole([3], [4, 5]), Given([53])]]
    )
    assert batch.z0[0].tolist() == [50, 51, 52, 3, -1, 53] or batch.z0[0].tolist() == [
        50, 51, 52, -1, 3, 53,
    ]  # fmt: skip
    assert batch.given[0].tolist() == [True, True, True, False, False, True]
    assert batch.open[0].tolist() == [False, True, True, False, False, False]
    assert batch.frozen.tolist() == [2]
    with pytest.raises(ValueError, match="given span"):
        align_layouts([[Hole([1], [2])]])
    with pytest.raises(ValueError, match="Given or Hole"):
        align_layouts([[Given([1]), (1, 2)]])


def test_sequence_layout():
    assert sequence_layout(2, [], 0) == [GIVEN, OPEN]
    assert sequence_layout(1, [False, True, True, False, True], 2) == [
        OPEN, FREE | X0, GIVEN | X0, OPEN | X0, FREE | X0, OPEN | X0, GIVEN, GIVEN,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="anchor"):
        sequence_layout(0, [], 0)


def _requests(seed):
    """Random prefix / x0 (with frozen tokens) / suffix requests; given ids unique, >= 50."""
    g = torch.Generator().manual_seed(seed)
    ids = iter(range(50, 1000))
    out = []
    for _ in range(5):
        prefix = [next(ids) for _ in range(int(torch.randint(1, 4, (1,), generator=g)))]
        n = int(torch.randint(0, 8, (1,), generator=g))
        flags = (torch.rand(n, generator=g) < 0.35).tolist()
        x0 = [next(ids) if f else int(torch.randint(1, 12, (1,), generator=g)) for f in flags]
        suffix = [next(ids) for _ in range(int(torch.randint(0, 3, (1,), generator=g)))]
        out.append((prefix, x0, flags, suffix))
    return out


def _sampler():
    model = TokenDependentModel(vocab=1000, ins=0.6, dele=0.4, sub=0.5, seed=1)
    banned = range(50, 1000)  # the model never draws a given token's id
    return BatchSampler(model, make_scheduler("linear"), banned_token_ids=banned, pad_token_id=0)


@pytest.mark.parametrize("seed", range(6))
def test_sampler_keeps_given_tokens_alone_and_batched(seed):
    reqs = _requests(seed)
    params = [SamplingParams(steps=12, seed=100 + i, max_new_tokens=40) for i in range(len(reqs))]
    batched = _sampler()
    for i, (prefix, x0, flags, suffix) in enumerate(reqs):
        batched.add(prefix, x0, params[i], key=i, suffix=suffix, x0_given=flags)
    results = {}
    while batched.has_work:
        results.update({r.key: r for r in batched.step()})
    edited = 0
    for i, (prefix, x0, flags, suffix) in enumerate(reqs):
        alone = _sampler()
        alone.add(prefix, x0, params[i], key=i, suffix=suffix, x0_given=flags)
        (single,) = [r for _ in range(params[i].steps) for r in alone.step()]
        res = results[i]
        assert single.tokens == res.tokens  # batch invariance
        toks = res.tokens
        assert toks[: len(prefix)] == prefix and toks[len(toks) - len(suffix) :] == suffix
        kept = [tok for f, tok in zip(flags, x0) if f]
        assert [tok for tok in toks if tok >= 50] == prefix + kept + suffix
        # tokens of one given run stay adjacent: nothing is inserted inside a frozen span
        runs = sequence_layout(len(prefix), flags, len(suffix))
        full = prefix + x0 + suffix
        for j in range(len(full) - 1):
            if runs[j] & OPEN == GIVEN and runs[j + 1] & GIVEN:  # inside one closed run
                k = toks.index(full[j])
                assert toks[k + 1] == full[j + 1]
        assert res.completion == toks[len(prefix) : len(toks) - len(suffix)]
        edited += res.n_ins + res.n_del + res.n_sub
    assert edited > 0


def test_guidance_keeps_the_suffix_given_in_the_unconditional_row():
    ids = torch.tensor([[1, 7, 8, 3, 4, 9]])
    mask = torch.ones_like(ids, dtype=torch.bool)
    given_ = torch.tensor([[True, True, True, False, False, True]])
    uids, umask, ugiven = unconditional_rows(ids, mask, given_, [3], pad_token_id=0)
    assert uids[0].tolist() == [1, 3, 4, 9, 0, 0]
    assert umask[0].tolist() == [True] * 4 + [False] * 2
    assert ugiven[0].tolist() == [True, False, False, True, False, False]


def test_x0_kept_counts_the_draft_tokens_that_survive_unchanged():
    """A model that substitutes every position by its target: the draft tokens already equal to
    the target survive (x0_kept), the others do not; a model that does nothing keeps them all."""
    target = [50, 3, 4, 5, 6, 7]
    draft = [3, 9, 5, 9, 7]  # 3 tokens (3, 5, 7) equal the target at their position
    sampler = BatchSampler(OracleSubModel(target, vocab=60), make_scheduler("linear"))
    (res,) = sampler.generate([[50]], [draft], SamplingParams(steps=8, seed=0))
    assert res.tokens == target[: len(res.tokens)] and res.n_sub == 2
    assert res.x0_kept == 3
    still = BatchSampler(TokenDependentModel(vocab=60), make_scheduler("linear"))
    (res,) = still.generate([[50]], [draft], SamplingParams(steps=8, seed=0))
    assert res.x0_kept == len(draft) and res.tokens == [50, *draft]


class EndLovingModel:
    """Inserts after every position, and its Q puts almost all mass on EOS (id 2)."""

    time_conditioned = False

    def __call__(self, input_ids, attention_mask, t, ins_rows=None, sub_rows=None):
        from editflow_core import EditFlowOutput

        B, L = input_ids.shape
        logits = torch.zeros(B, L, 12)
        logits[..., 2] = 8.0
        rates = torch.tensor([1.0, 0.0, 0.0]).expand(B, L, 3).clone()
        return EditFlowOutput(rates, logits, logits)


def test_a_given_suffix_holds_the_end_so_q_never_draws_eos_before_it():
    """With a suffix the text's end is given: an EOS in the middle would cut it, so it is never
    drawn; without one, the same model ends its text with EOS almost at once."""
    sampler = BatchSampler(EndLovingModel(), make_scheduler("linear"), eos_token_id=2)
    params = SamplingParams(steps=4, seed=0, max_new_tokens=20)
    with_suffix, plain = sampler.generate([[1, 5], [1, 5]], None, params, suffixes=[[7, 2], []])
    assert with_suffix.n_ins > 0 and 2 not in with_suffix.tokens[:-1]
    assert with_suffix.tokens[-2:] == [7, 2]
    assert 2 in plain.tokens and plain.completion == plain.tokens[2 : plain.tokens.index(2)]
