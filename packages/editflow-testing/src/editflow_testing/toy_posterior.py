"""Exact posterior rates of the Edit Flow path on a toy language, by enumeration.

Written from the definition of the path, not from editflow_core: x1 is drawn from a finite
language, x0 is ``empty`` or ``n_masks`` mask tokens, the coupling puts its |n - m| gap columns
uniformly at random among the max(n, m) columns (every optimal alignment of a noise x0), and
each column holds its x1 value at time t with probability kappa(t). For a state x_t the
posterior over (x1, alignment, which columns switched) gives the expected number of pending
edits at each slot: the normalised rates the loss teaches, E[#edits | x_t, t]. The tests check
the core and trained models against it; ``OracleModel`` (the exact rates as a model) is the
sampling benchmark's exact oracle.

Sequences here are token lists after the anchor; positions count the anchor as 0, so an
insertion "after 0" is at the start of the text and x_t position p >= 1 is suffix[p - 1].
"""

from __future__ import annotations

import functools
import itertools
import math
from collections import defaultdict
from dataclasses import dataclass, field

import torch
from editflow_core import EditFlowOutput

GAP = None  # a blank column entry


def alignments(x1: tuple[int, ...], n_masks: int, mask: int):
    """Every (z0, z1, probability) the random-gap noise coupling can give.

    Each has probability 1 / C(k, g): k = max(n, m) columns, g = |n - m| gap columns anywhere.
    """
    m = len(x1)
    k, g = max(n_masks, m), abs(n_masks - m)
    places = list(itertools.combinations(range(k), g))
    for gaps in places:
        filled = iter(x1 if n_masks >= m else [mask] * n_masks)
        short = [GAP if j in gaps else next(filled) for j in range(k)]
        if n_masks >= m:
            yield [mask] * k, short, 1 / len(places)
        else:
            yield short, list(x1), 1 / len(places)


@dataclass
class SlotRates:
    """E[#pending edits | x_t, t] at each position of x_t (anchor = 0) and the token laws."""

    ins: list[float]
    dele: list[float]
    sub: list[float]
    q_ins: list[dict[int, float]] = field(default_factory=list)
    q_sub: list[dict[int, float]] = field(default_factory=list)
    #: E[#switched columns | x_t, t] by the reverse edit that undoes them: re-insert an x0 token
    #: after the position, delete the (inserted) token, substitute it back to its x0 token
    rins: list[float] = field(default_factory=list)
    rdel: list[float] = field(default_factory=list)
    rsub: list[float] = field(default_factory=list)


class ToyPosterior:
    """The path's law on a language {x1: probability} with x0 = ``n_masks`` masks (0: empty).

    ``kappa`` is the schedule, written out by the caller (e.g. ``lambda t: t**3``).
    """

    def __init__(self, language: dict[tuple[int, ...], float], n_masks: int, mask: int, kappa):
        self.language, self.n_masks, self.mask, self.kappa = language, n_masks, mask, kappa

    def states(self, t: float) -> dict[tuple[int, ...], float]:
        """P(x_t = s) for every reachable suffix s at time t."""
        return {s: w for s, (w, _) in self._enumerate(t).items()}

    def rates(self, x_t: tuple[int, ...], t: float) -> SlotRates:
        """E[#pending edits of each kind at each slot | x_t, t] and the token laws Q."""
        total, acc = self._enumerate(t)[tuple(x_t)]
        n = len(x_t) + 1
        out = SlotRates(
            [0.0] * n, [0.0] * n, [0.0] * n, [{} for _ in range(n)], [{} for _ in range(n)],
            [0.0] * n, [0.0] * n, [0.0] * n,
        )  # fmt: skip
        for (kind, pos, tok), w in acc.items():
            getattr(out, kind)[pos] += w / total
            if kind in ("ins", "sub"):
                q = (out.q_ins if kind == "ins" else out.q_sub)[pos]
                q[tok] = q.get(tok, 0.0) + w / total
        for qs, lam in ((out.q_ins, out.ins), (out.q_sub, out.sub)):
            for q, rate in zip(qs, lam):
                for tok in q:
                    q[tok] /= rate
        return out

    @functools.lru_cache(maxsize=4096)  # noqa: B019 (a test helper; samplers ask on a grid of t)
    def _enumerate(self, t: float):
        kappa = self.kappa(t)
        found: dict[tuple[int, ...], list] = defaultdict(lambda: [0.0, defaultdict(float)])
        for x1, p1 in self.language.items():
            for z0, z1, pa in alignments(x1, self.n_masks, self.mask):
                k = len(z0)
                for switched in itertools.product((False, True), repeat=k):
                    s = sum(switched)
                    w = p1 * pa * kappa**s * (1 - kappa) ** (k - s)
                    if w == 0:
                        continue
                    zt = [b if sw else a for a, b, sw in zip(z0, z1, switched)]
                    x_t = tuple(v for v in zt if v is not GAP)
                    entry = found[x_t]
                    entry[0] += w
                    before = 0  # tokens of z_t before column j
                    for a0, a, b in zip(z0, zt, z1):
                        if a == b != a0:  # switched: undone backward in time
                            if b is GAP:
                                entry[1][("rins", before, None)] += w
                            elif a0 is GAP:
                                entry[1][("rdel", before + 1, None)] += w
                            else:
                                entry[1][("rsub", before + 1, None)] += w
                        if a != b:
                            if a is GAP:
                                entry[1][("ins", before, b)] += w
                            elif b is GAP:
                                entry[1][("dele", before + 1, None)] += w
                            else:
                                entry[1][("sub", before + 1, b)] += w
                        before += a is not GAP
        return found

    def entropy(self) -> float:
        """H(x1) in nats."""
        return -sum(p * math.log(p) for p in self.language.values() if p > 0)


class OracleModel:
    """A model of the core protocol whose rates and Q are the exact posterior (``ToyPosterior``).

    ``anchor`` is position 0 of every row; the vocabulary has ``vocab`` ids. Rows the language
    cannot reach get zero rates (and uniform Q).
    """

    time_conditioned = True

    has_reverse_rates = True  # the exact reverse rates too, for the sampler's corrector

    def __init__(self, posterior: ToyPosterior, vocab: int):
        self.posterior, self.vocab = posterior, vocab

    def __call__(self, input_ids, attention_mask, t, ins_rows=None, sub_rows=None):
        """The exact rates, token logits and reverse rates of each row (the core protocol)."""
        B, L = input_ids.shape
        rates = torch.zeros(B, L, 3, dtype=torch.float64)
        reverse = torch.zeros(B, L, 3, dtype=torch.float64)
        ins = torch.full((B, L, self.vocab), -1e4, dtype=torch.float64)
        sub = ins.clone()
        for b in range(B):
            n = int(attention_mask[b].sum())
            suffix = tuple(input_ids[b, 1:n].tolist())
            try:
                r = self.posterior.rates(suffix, float(t[b]))
            except KeyError:
                continue
            for i in range(n):
                rates[b, i] = torch.tensor([r.ins[i], r.dele[i], r.sub[i]])
                reverse[b, i] = torch.tensor([r.rins[i], r.rdel[i], r.rsub[i]])
                for q, logits in ((r.q_ins[i], ins), (r.q_sub[i], sub)):
                    for tok, p in q.items():
                        logits[b, i, tok] = math.log(p)
        ins_l, sub_l = ins.float(), sub.float()
        if ins_rows is not None:
            ins_l = ins_l.flatten(0, 1)[ins_rows]
        if sub_rows is not None:
            sub_l = sub_l.flatten(0, 1)[sub_rows]
        return EditFlowOutput(rates.float(), ins_l, sub_l, reverse.float())
