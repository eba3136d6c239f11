"""Per-row forward reuse for the batched sampler.

A bidirectional model's rows do not interact, so when the model ignores t, a row whose tokens
did not change since its last forward would get the same rates and token logits again. The
``RowCache`` keeps, for every running row, the rates of its last forward and which forward (a
``RatesFirst``) can still give its token logits; the sampler runs the model on stale rows only.
Forwards no row refers to any more are dropped (they hold hidden states).
"""

from __future__ import annotations

import torch

from .model_protocol import RatesFirst


class RowCache:
    """The latest forward of every running row, so rows whose tokens did not change can skip it.

    ``rates``: (B, W, 3), row b valid at its own positions and zero elsewhere. ``stale[b]``:
    row b needs a forward. Row b was computed by ``outs[source[b]]`` (a ``RatesFirst`` of width
    ``widths[source[b]]``) as its row ``index[b]``, which also serves its token logits.
    The per-row bookkeeping is plain lists: B is small and list updates cost less than tiny
    tensor ops, which matters at B = 1.
    """

    def __init__(self, device: torch.device) -> None:
        self.rates = torch.zeros(0, 0, 3, device=device)
        self.stale: list[bool] = []
        self.source: list[int] = []
        self.index: list[int] = []
        self.outs: list[RatesFirst] = []
        self.widths: list[int] = []

    def add_rows(self, n: int) -> None:
        """Append n stale rows (new sequences)."""
        self.rates = torch.cat([self.rates, self.rates.new_zeros(n, self.rates.shape[1], 3)])
        self.stale += [True] * n
        self.source += [-1] * n
        self.index += [0] * n

    def keep(self, keep: list[int], index: torch.Tensor) -> None:
        """Keep the rows ``keep`` (in that order; ``index`` is the same as a tensor)."""
        self.rates = self.rates[index]
        self.stale = [self.stale[b] for b in keep]
        self.source = [self.source[b] for b in keep]
        self.index = [self.index[b] for b in keep]
        self._prune()

    def fit(self, width: int) -> None:
        """Pad with zeros or cut the rates to the batch's current width."""
        W = self.rates.shape[1]
        if width < W:
            self.rates = self.rates[:, :width]
        elif width > W:
            pad = self.rates.new_zeros(self.rates.shape[0], width - W, 3)
            self.rates = torch.cat([self.rates, pad], 1)

    def store(self, rows: list[int], out: RatesFirst) -> None:
        """Record the forward ``out`` of batch rows ``rows`` (its row j is batch row rows[j])."""
        n, w, _ = out.rates.shape
        B, W, _ = self.rates.shape
        rates = out.rates.float()
        if w < W:
            rates = torch.cat([rates, rates.new_zeros(n, W - w, 3)], 1)
        if n == B:  # every row, in order
            self.rates = rates
            self.outs, self.widths = [out], [w]
            self.stale, self.source, self.index = [False] * B, [0] * B, list(range(B))
            return
        self.rates[torch.tensor(rows, device=self.rates.device)] = rates
        for j, b in enumerate(rows):
            self.stale[b], self.source[b], self.index[b] = False, len(self.outs), j
        self.outs.append(out)
        self.widths.append(w)
        self._prune()

    def token_logits(
        self, ib: torch.Tensor, ii: torch.Tensor, sb: torch.Tensor, si: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits of Q_ins at (ib, ii) and of Q_sub at (sb, si), (N, V) each, in that order."""
        dev = ib.device
        if len(self.outs) == 1:  # one forward computed every row: one call
            index, w = torch.tensor(self.index, device=dev), self.widths[0]
            return self.outs[0].token_logits(index[ib] * w + ii, index[sb] * w + si)
        # Several forwards: group the fired rows by the forward that computed them (plain
        # lists, N is small), one token_logits call per forward, scattered back in order.
        groups: dict[int, list[list[int]]] = {}  # k -> [ins slots, ins rows, sub slots, sub rows]
        for base, rows, cols in ((0, ib, ii), (2, sb, si)):
            for n, (b, i) in enumerate(zip(rows.tolist(), cols.tolist())):
                k = self.source[b]
                g = groups.setdefault(k, [[], [], [], []])
                g[base].append(n)
                g[base + 1].append(self.index[b] * self.widths[k] + i)
        ins_out = sub_out = None
        for k, (pi, fi, ps, fs) in groups.items():
            li, ls = self.outs[k].token_logits(
                torch.tensor(fi, dtype=torch.long, device=dev),
                torch.tensor(fs, dtype=torch.long, device=dev),
            )
            if ins_out is None:
                ins_out = li.new_empty(len(ib), li.shape[-1])
                sub_out = ls.new_empty(len(sb), ls.shape[-1])
            ins_out[pi], sub_out[ps] = li, ls
        if ins_out is None:  # nothing fired
            return self.outs[-1].token_logits(ib, sb)
        return ins_out, sub_out

    def _prune(self) -> None:
        """Drop forwards no row refers to any more (they hold hidden states)."""
        live = sorted(set(self.source) - {-1})
        if len(live) == len(self.outs):
            return
        remap = {k: j for j, k in enumerate(live)}
        self.source = [remap.get(k, -1) for k in self.source]
        self.outs = [self.outs[k] for k in live]
        self.widths = [self.widths[k] for k in live]
