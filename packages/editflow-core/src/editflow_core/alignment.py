"""Alignments between x0 and x1.

An alignment is a pair of equal-length sequences z0, z1 over vocab + {BLANK} with
strip_blanks(z0) == x0 and strip_blanks(z1) == x1 and no (BLANK, BLANK) column. A column
(a, b) is a keep (a == b), an insertion (a = BLANK), a deletion (b = BLANK) or a substitution.

Two ways to build one:
- ``align``: an optimal (minimum unit-cost Levenshtein) alignment of arbitrary sequences, from
  rapidfuzz's compiled edit-distance routines (about 1000x a Python DP). rapidfuzz picks one
  optimal alignment deterministically.
- ``couple_noise``: x0 holds no real tokens (``empty``, ``masks``, ``uniform``). Then every
  optimal alignment has max(n, m) columns: min(n, m) substitutions and |n - m| insertions or
  deletions, in any position. It is built in O(n + m) with a choice of where the gaps go:
  ``"random"`` (default: uniformly among the optimal alignments) or ``"left"`` / ``"right"``
  (packed at one edge). The reference's DP tie-break packs them left, so a model trained on
  it learns to insert right after the prompt; random placement removes that bias.

``align_batch`` does either for a batch with per-example frozen prefixes (anchor, prompt) and
returns padded tensors. Padding columns are (BLANK, BLANK): they produce no token and no
edit, so downstream code needs no separate column mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from rapidfuzz.distance import Levenshtein

from .spans import Given, Hole, prefix_layout

BLANK = -1
"""The single gap sentinel. Never a model input or output."""

Gaps = Literal["random", "left", "right"]
Coupling = Literal["optimal", "noise"]


def strip_blanks(z: Sequence[int] | torch.Tensor) -> list[int]:
    """Drop the BLANK entries of an alignment row: z (L,) -> the underlying sequence."""
    if isinstance(z, torch.Tensor):
        return z[z != BLANK].tolist()
    return [a for a in z if a != BLANK]


def align(x0: Sequence[int], x1: Sequence[int]) -> tuple[list[int], list[int]]:
    """Optimal unit-cost Levenshtein alignment of two token-id sequences.

    Returns:
        (z0, z1): equal-length lists, BLANK at gaps, never a (BLANK, BLANK) column; the number
        of columns with z0 != z1 equals the edit distance.
    """
    x0, x1 = list(x0), list(x1)
    z0: list[int] = []
    z1: list[int] = []
    # as_list(): plain tuples; unpacking rapidfuzz's Opcode objects costs ~2x the whole DP
    for tag, i1, i2, j1, j2 in Levenshtein.opcodes(x0, x1).as_list():
        if tag == "delete":
            z0 += x0[i1:i2]
            z1 += [BLANK] * (i2 - i1)
        elif tag == "insert":
            z0 += [BLANK] * (j2 - j1)
            z1 += x1[j1:j2]
        else:  # equal, replace: blocks of the same length
            z0 += x0[i1:i2]
            z1 += x1[j1:j2]
    return z0, z1


def couple_noise(
    x0: torch.Tensor,
    x1: torch.Tensor,
    gaps: Gaps = "random",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed-form optimal alignment for an x0 that holds no real tokens, in O(n + m).

    The shorter side's tokens fill the non-gap columns in order; the |n - m| gap columns are
    placed by ``gaps`` (see the module docstring).

    Args:
        x0: (n,) long, the source tokens (masks or any placeholder).
        x1: (m,) long, the target tokens.
        gaps: where the gap columns go: ``"random"``, ``"left"`` or ``"right"``.
        generator: source of randomness for ``"random"`` gaps.

    Returns:
        (z0, z1): (max(n, m),) long each.
    """
    n, m = len(x0), len(x1)
    k, g = max(n, m), abs(n - m)
    if g == 0:
        return x0.clone(), x1.clone()
    gap = torch.zeros(k, dtype=torch.bool)
    if gaps == "left":
        gap[:g] = True
    elif gaps == "right":
        gap[k - g :] = True
    elif gaps == "random":
        gap[torch.randperm(k, generator=generator)[:g]] = True
    else:
        raise ValueError(f"gaps must be 'random', 'left' or 'right', got {gaps!r}")
    short, long_ = (x0, x1) if n < m else (x1, x0)
    filled = torch.full((k,), BLANK, dtype=torch.long)
    filled[~gap] = short
    return (filled, long_.clone()) if n < m else (long_.clone(), filled)


@dataclass
class AlignedBatch:
    """A padded batch of alignments.

    Attributes:
        z0, z1: (B, K) long, BLANK at gaps and at padding columns.
        frozen: (B,) long, the number of leading given columns (anchor + prompt) of each row.
        given, open: (B, K) bool, the layout of the columns (``editflow_core.spans``): given
            columns are keeps (z0 == z1) and never edited; insertions may follow an open one.
            Default: the prefix layout of ``frozen``.
    """

    z0: torch.Tensor
    z1: torch.Tensor
    frozen: torch.Tensor
    given: torch.Tensor | None = None
    open: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if (self.given is None or self.open is None) and self.z0.dim() == 2:
            self.given, self.open = prefix_layout(self.frozen, self.z0.shape[1])


def align_batch(
    x0s: Sequence[Sequence[int] | torch.Tensor],
    x1s: Sequence[Sequence[int] | torch.Tensor],
    frozen: Sequence[int] | None = None,
    coupling: Coupling = "optimal",
    gaps: Gaps = "random",
    generator: torch.Generator | None = None,
) -> AlignedBatch:
    """Align a batch of (x0, x1) pairs after their frozen prefixes and pad the result.

    Args:
        x0s: B source sequences.
        x1s: B target sequences; ``x0s[i][:frozen[i]]`` must equal ``x1s[i][:frozen[i]]``.
        frozen: B prefix lengths (anchor + prompt), default 1 (the anchor alone).
        coupling: ``"optimal"`` (``align``, for any x0) or ``"noise"`` (``couple_noise``, for
            x0 that holds no real tokens: empty, masks, uniform).
        gaps: gap placement of the ``"noise"`` coupling.
        generator: source of randomness for the noise coupling's gaps.

    Raises:
        ValueError: mismatched batch sizes, a frozen length out of range, or prefixes that differ.
    """
    if len(x0s) != len(x1s):
        raise ValueError(f"align_batch: {len(x0s)} x0 sequences but {len(x1s)} x1 sequences")
    if coupling not in ("optimal", "noise"):
        raise ValueError(f"coupling must be 'optimal' or 'noise', got {coupling!r}")
    frozen = [1] * len(x0s) if frozen is None else list(frozen)
    if len(frozen) != len(x0s):
        raise ValueError(f"align_batch: {len(frozen)} frozen lengths for {len(x0s)} pairs")
    if coupling == "noise":
        rows0 = [torch.as_tensor(a, dtype=torch.long) for a in x0s]
        rows1 = [torch.as_tensor(b, dtype=torch.long) for b in x1s]
        for i, (a, b, f) in enumerate(zip(rows0, rows1, frozen)):
            _check_prefix(i, f, len(a), len(b), torch.equal(a[:f], b[:f]))
        return _couple_noise_batch(rows0, rows1, frozen, gaps, generator)
    # optimal: Python lists end to end (rapidfuzz takes lists), one tensor per side at the end
    lists0: list[list[int]] = []
    lists1: list[list[int]] = []
    for i, (a, b, f) in enumerate(zip(x0s, x1s, frozen)):
        a = a.tolist() if isinstance(a, torch.Tensor) else list(a)
        b = b.tolist() if isinstance(b, torch.Tensor) else list(b)
        _check_prefix(i, f, len(a), len(b), a[:f] == b[:f])
        z0, z1 = align(a[f:], b[f:])
        lists0.append(a[:f] + z0)
        lists1.append(b[:f] + z1)
    B, width = len(lists0), max(map(len, lists0), default=0)

    def padded(rows: list[list[int]]) -> torch.Tensor:
        flat = [r + [BLANK] * (width - len(r)) for r in rows]
        return torch.tensor(flat, dtype=torch.long).view(B, width)

    return AlignedBatch(padded(lists0), padded(lists1), torch.tensor(frozen, dtype=torch.long))


def align_layouts(
    layouts: Sequence[Sequence[Given | Hole]],
    coupling: Coupling | Sequence[Coupling] = "optimal",
    gaps: Gaps = "random",
    generator: torch.Generator | None = None,
) -> AlignedBatch:
    """Align a batch of sequences made of given spans and holes (``editflow_core.spans``).

    Each row is its pieces in order: a ``Given`` span's tokens become keep columns (given; the
    last one open when a hole follows), each ``Hole``'s x0 and x1 are aligned on their own
    (``align`` or ``couple_noise``, as ``coupling`` says), so edits never cross a given span.
    Adjacent given spans merge; an empty hole still opens the gap between its neighbours.

    Args:
        layouts: B rows; each starts with a non-empty ``Given`` (the anchor at least).
        coupling: one for all rows, or one per row (a batch may mix noise and edit x0).
        gaps: gap placement of the ``"noise"`` coupling.
        generator: source of randomness for the noise coupling's gaps.

    Returns:
        An ``AlignedBatch`` whose ``frozen`` is the length of each row's first given span.

    Raises:
        ValueError: a row that does not start with a given token, or an unknown piece.
    """
    couplings = [coupling] * len(layouts) if isinstance(coupling, str) else list(coupling)
    if len(couplings) != len(layouts):
        raise ValueError(f"align_layouts: {len(couplings)} couplings for {len(layouts)} rows")
    for c in couplings:
        if c not in ("optimal", "noise"):
            raise ValueError(f"coupling must be 'optimal' or 'noise', got {c!r}")
    rows0, rows1, rows_g, rows_o, frozen = [], [], [], [], []
    for i, pieces in enumerate(layouts):
        z0: list[int] = []
        z1: list[int] = []
        given: list[bool] = []
        opened: list[bool] = []
        first = None
        for piece in pieces:
            if isinstance(piece, Given):
                toks = list(piece.tokens)
                z0 += toks
                z1 += toks
                given += [True] * len(toks)
                opened += [False] * len(toks)
            elif isinstance(piece, Hole):
                if not given:
                    raise ValueError(f"layout {i}: must start with a given span (the anchor)")
                first = len(z0) if first is None else first
                if given[-1]:  # the hole starts right after this given token
                    opened[-1] = True
                a, b = _align_hole(piece, couplings[i], gaps, generator)
                z0 += a
                z1 += b
                given += [False] * len(a)
                opened += [False] * len(a)
            else:
                raise ValueError(f"layout {i}: pieces must be Given or Hole, got {piece!r}")
        if not given or not given[0]:
            raise ValueError(f"layout {i}: must start with a non-empty given span (the anchor)")
        rows0.append(z0)
        rows1.append(z1)
        rows_g.append(given)
        rows_o.append(opened)
        frozen.append(first if first is not None else len(z0))
    B, width = len(rows0), max(map(len, rows0), default=0)

    def padded(rows: list[list], fill, dtype) -> torch.Tensor:
        flat = [r + [fill] * (width - len(r)) for r in rows]
        return torch.tensor(flat, dtype=dtype).view(B, width)

    return AlignedBatch(
        z0=padded(rows0, BLANK, torch.long),
        z1=padded(rows1, BLANK, torch.long),
        frozen=torch.tensor(frozen, dtype=torch.long),
        given=padded(rows_g, False, torch.bool),
        open=padded(rows_o, False, torch.bool),
    )


def _align_hole(
    hole: Hole, coupling: Coupling, gaps: Gaps, generator: torch.Generator | None
) -> tuple[list[int], list[int]]:
    """One hole's alignment columns (z0, z1) as lists."""
    if coupling == "optimal":
        return align(list(hole.x0), list(hole.x1))
    a, b = couple_noise(
        torch.as_tensor(list(hole.x0), dtype=torch.long),
        torch.as_tensor(list(hole.x1), dtype=torch.long),
        gaps,
        generator,
    )
    return a.tolist(), b.tolist()


def _check_prefix(i: int, f: int, n: int, m: int, same: bool) -> None:
    """Pair i's frozen length f must fit both sequences (lengths n, m) and match."""
    if not 0 <= f <= min(n, m):
        raise ValueError(f"pair {i}: frozen length {f} exceeds a sequence (x0 {n}, x1 {m})")
    if not same:
        raise ValueError(f"pair {i}: the frozen prefix of x0 differs from that of x1")


def _couple_noise_batch(
    x0s: list[torch.Tensor],
    x1s: list[torch.Tensor],
    frozen: list[int],
    gaps: Gaps,
    generator: torch.Generator | None,
) -> AlignedBatch:
    """``couple_noise`` after each frozen prefix, for a whole batch at once.

    No per-row loop over columns: the same law as ``couple_noise``, one vectorised draw.
    """
    if gaps not in ("random", "left", "right"):
        raise ValueError(f"gaps must be 'random', 'left' or 'right', got {gaps!r}")
    pad = torch.nn.utils.rnn.pad_sequence
    f = torch.tensor(frozen, dtype=torch.long)  # (B,)
    n = torch.tensor([len(a) for a in x0s]) - f  # suffix lengths
    m = torch.tensor([len(b) for b in x1s]) - f
    k, g = torch.maximum(n, m), (n - m).abs()  # columns, gaps per row
    B, width = len(x0s), int((f + k).max())
    a = pad(x0s, batch_first=True, padding_value=BLANK)  # (B, La)
    b = pad(x1s, batch_first=True, padding_value=BLANK)  # (B, Lb)
    col = torch.arange(width)[None] - f[:, None]  # suffix column index, (B, W)
    inside = (col >= 0) & (col < k[:, None])
    if gaps == "random":
        # uniform keys; columns outside the suffix sort last, so a suffix column's rank is
        # uniform over 0..k-1 and the g smallest keys pick g gap columns uniformly
        keys = torch.rand(B, width, generator=generator).masked_fill(~inside, 2.0)
        gap = inside & (_rank(keys) < g[:, None])
    elif gaps == "left":
        gap = inside & (col < g[:, None])
    else:
        gap = inside & (col >= (k - g)[:, None])
    fill = inside & ~gap  # columns the shorter side fills, in order
    short_src = (fill.cumsum(1) - 1).clamp_min(0)  # index into the shorter suffix
    long_src = col.clamp(0)
    x0_short = n < m  # (B,)
    prefix = col < 0
    z = []
    for seq, is_short in ((a, x0_short), (b, ~x0_short)):
        src = torch.where(is_short[:, None], short_src, long_src) + f[:, None]  # (B, W)
        src = torch.where(prefix, torch.arange(width)[None], src)
        vals = seq.gather(1, src.clamp_max(seq.shape[1] - 1))
        keep = prefix | torch.where(is_short[:, None], fill, inside)
        z.append(torch.where(keep, vals, BLANK))
    return AlignedBatch(z0=z[0], z1=z[1], frozen=f)


def _rank(keys: torch.Tensor) -> torch.Tensor:
    """Rank (0-based) of each key within its row: (B, W) -> (B, W) long."""
    order = keys.argsort(1)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(keys.shape[1]).expand_as(order).contiguous())
    return rank
