"""Slow, obviously correct references for the core math.

The tests check editflow-core against them, and the benchmarks time its alignment against the
pure-Python DP.
"""

import math

import torch
from editflow_core import BLANK, DEL, INS, SUB


def edit_distance(a: list[int], b: list[int]) -> int:
    """Textbook O(nm) Levenshtein distance (unit costs)."""
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
        prev = cur
    return prev[-1]


def needleman_wunsch(a: list[int], b: list[int]) -> tuple[list[int], list[int]]:
    """Pure-Python DP alignment with traceback (the baseline the benchmark beats)."""
    n, m = len(a), len(b)
    d = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        d[i][0] = i
    for j in range(m + 1):
        d[0][j] = j
    for i in range(1, n + 1):
        ai, row, up = a[i - 1], d[i], d[i - 1]
        for j in range(1, m + 1):
            row[j] = min(up[j] + 1, row[j - 1] + 1, up[j - 1] + (ai != b[j - 1]))
    z0, z1, i, j = [], [], n, m
    while i or j:
        if i and j and d[i][j] == d[i - 1][j - 1] + (a[i - 1] != b[j - 1]):
            z0.append(a[i - 1])
            z1.append(b[j - 1])
            i -= 1
            j -= 1  # noqa: E702
        elif i and d[i][j] == d[i - 1][j] + 1:
            z0.append(a[i - 1])
            z1.append(BLANK)
            i -= 1  # noqa: E702
        else:
            z0.append(BLANK)
            z1.append(b[j - 1])
            j -= 1  # noqa: E702
    return z0[::-1], z1[::-1]


def apply_edits(x: list[int], edits: list[tuple[int, int, int]]) -> list[int]:
    """Apply (op, pos, token) edits, listed in alignment-column order, to x."""
    after: dict[int, list[int]] = {}
    new = list(x)
    gone = set()
    for op, pos, tok in edits:
        if op == INS:
            after.setdefault(pos, []).append(tok)
        elif op == DEL:
            gone.add(pos)
        else:
            new[pos] = tok
    out = []
    for i, tok in enumerate(new):
        if i not in gone:
            out.append(tok)
        out += after.get(i, [])
    return out


def loss_reference(rates, ins_full, sub_full, x_t_len, frozen, t_w, edits, target_len):
    """Per-example loss with explicit loops and full log-softmax.

    rates (L, 3), ins_full/sub_full (L, V) logits, edits list of (op, pos, token).
    """
    outflow = 0.0
    for i in range(x_t_len):
        if i >= frozen - 1:
            outflow += float(rates[i, INS])
        if i >= frozen:
            outflow += float(rates[i, DEL]) + float(rates[i, SUB])
    edit = 0.0
    for op, pos, tok in edits:
        r = float(rates[pos, op])
        lq = 0.0
        if op == INS:
            lq = float(torch.log_softmax(ins_full[pos].double(), -1)[tok])
        elif op == SUB:
            lq = float(torch.log_softmax(sub_full[pos].double(), -1)[tok])
        edit += math.log(r) + lq
    return (t_w * outflow - t_w * edit) / max(target_len, 1), t_w * outflow, t_w * edit
