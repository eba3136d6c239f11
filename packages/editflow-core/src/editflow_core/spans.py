"""Which tokens are given, and where insertions may go: the layout of a sequence.

A sequence is a run of pieces: *given* spans, which never change (the anchor, a prompt, the
suffix of a fill-in-the-middle request, frozen words of a draft), and *holes* between them,
whose tokens the process edits. Per token the layout is two flags:

    given[i]  token i is given: no deletion or substitution of it
    open[i]   a given token after which a hole starts: insertions after it are allowed

Insertions are allowed after every token that is not given (it lies in a hole) and after an
open given token (the left end of a hole, which may still be empty). So for

    [BOS] prompt | hole | suffix          given = prompt and suffix; open = the last prompt token

text may grow only between the prompt and the suffix, never inside or after a given span
unless a hole follows it. The plain prompt-then-generate case is the prefix layout
(``prefix_layout``): the first ``frozen`` tokens given, the last of them open.

Insertions and deletions move tokens, so the sampler carries the flags along with the tokens
(``sequence_layout`` / ``decode``: one long code per token, 0 for inserted tokens). A third
bit, ``X0``, marks tokens of x0 that are still unchanged (cleared by a substitution), so a
sampler can say how much of a draft survived.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

#: per-token layout codes (``sequence_layout``): a token in a hole, a given token, an open given
#: token; ``X0`` is or-ed onto x0's tokens while they are unchanged
FREE, GIVEN, OPEN, X0 = 0, 1, 3, 4


@dataclass(frozen=True)
class Given:
    """A span of tokens that never changes."""

    tokens: Sequence[int]


@dataclass(frozen=True)
class Hole:
    """A span the process edits: x0's tokens there at t = 0, x1's at t = 1.

    Either may be empty; an empty hole still lets text be inserted between its neighbours.
    """

    x0: Sequence[int]
    x1: Sequence[int]


def prefix_layout(frozen: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The layout of rows whose first ``frozen`` tokens are given (anchor + prompt).

    frozen: (B,) long >= 1 -> (given, open): (B, width) bool each.
    """
    pos = torch.arange(width, device=frozen.device)[None]
    f = frozen[:, None]
    return pos < f, pos == f - 1


def rate_mask(
    attention_mask: torch.Tensor, given: torch.Tensor, open_: torch.Tensor
) -> torch.Tensor:
    """Which rates take part: (B, L) mask, given and open flags -> (B, L, 3) bool (ins, del, sub).

    Insertions after real tokens that are free or open; deletions and substitutions of real
    tokens that are not given; nothing at padding.
    """
    real = attention_mask.bool()
    edit = real & ~given
    ins = real & (~given | open_)
    return torch.stack([ins, edit, edit], dim=-1)


def decode(codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L) long codes -> (given, open) (B, L) bool."""
    return (codes & GIVEN) != 0, (codes & OPEN) == OPEN


def sequence_layout(
    prefix_len: int,
    x0_given: Sequence[bool],
    suffix_len: int = 0,
) -> list[int]:
    """Codes of a sequence prefix + x0 + suffix for the sampler.

    The prefix (>= 1 token: anchor + prompt) is given, open at its last token; x0's tokens are
    free, except those flagged in ``x0_given``, each run of which is open at its end (text may
    follow it); the suffix is given and closed (nothing is inserted after it). x0's tokens carry
    the ``X0`` bit.
    """
    if prefix_len < 1:
        raise ValueError("the prefix must hold at least the anchor token")
    codes = [GIVEN] * prefix_len + [GIVEN if g else FREE for g in x0_given] + [GIVEN] * suffix_len
    codes[prefix_len - 1] = OPEN
    for i in range(prefix_len, prefix_len + len(x0_given)):
        if codes[i] == GIVEN and (i + 1 == prefix_len + len(x0_given) or codes[i + 1] == FREE):
            codes[i] = OPEN
    for i in range(prefix_len, prefix_len + len(x0_given)):
        codes[i] |= X0
    return codes
