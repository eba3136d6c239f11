"""An upper bound on the negative log-likelihood of text under an Edit Flow model.

The model defines a CTMC over sequences: from x0 ~ p0, an edit e fires at intensity
w(t) * lam_hat_e(x_t, t) * Q_e(token), with w = kappa' / (1 - kappa). Its probability of a text
x1 has no closed form, but for any distribution q over edit paths that end at x1,

    -log p(x1) <= E_q[ log q(path | x1) - log P_model(path) ]             (ELBO)

We take q = the training path (the coupling of x0 and x1, then each alignment column switching
at its own time), stopped at T with kappa(T) = K (``kappa_max``, default 0.999): the model's
process is run on [0, T] and its state at T is its output. ``docs/likelihood.md`` in this
package derives the estimator; in short, for one coupling draw with n pending columns,

    bound = log a(z | x0, x1)                                     exact (the coupling's draw)
          + n * (-1 - (1 - K) log(1 - K) / K - log K)             exact (the columns' clocks)
          + E[ integral_0^T w(t) sum_i lam_hat_i(x_t, t) dt ]     estimated ("outflow")
          + E[ sum over the n switches of -log(lam_hat_e Q_e) ]    estimated ("edits")

with both expectations over the path stopped at T. They are estimated by importance sampling
over v = kappa(t) in [0, K] from a two-part mixture (uniform in v, and uniform in -log(1 - v),
so neither w's divergence near t = 1 nor a model's small rates there blow up the variance),
and over states drawn half from the path itself and half with one uniformly chosen column forced
to be pending (which turns the sum over switches into a sum over the drawn state's pending
edits). Every sample
is an unbiased estimate of the bound for that coupling draw, and every coupling draw gives a
valid bound, so the average is an unbiased estimate of a true upper bound on -log p(x1).

The bound is for the continuous-time process that ``BatchSampler`` approximates with finite
steps; the sampler's own discretisation is not part of it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .alignment import BLANK, AlignedBatch, Coupling, Gaps, align_batch
from .model_protocol import INS, SUB, RateModel
from .path import sample_path
from .scheduler import Scheduler
from .x0 import X0Sampler

DEFAULT_KAPPA_MAX = 0.999
LOG_SHARE = 0.1  # share of the proposal that is uniform in -log(1 - v)
FORCE_SHARE = 0.5  # share of the draws that force one pending column


@dataclass
class NLLBound:
    """Per-sequence estimates of the bound (nats), and what they cover.

    Attributes:
        nats: (N,) float64, each sequence's bound estimate (mean over its samples).
        var: (N,) float64, the variance of that mean (sample variance / samples).
        tokens: (N,) long, the non-frozen tokens of each x1 (what the bound scores).
        samples: the Monte Carlo samples per sequence.
    """

    nats: torch.Tensor
    var: torch.Tensor
    tokens: torch.Tensor
    samples: int

    @property
    def total(self) -> float:
        """The bound on -log p of all sequences together, in nats."""
        return float(self.nats.sum())

    @property
    def total_se(self) -> float:
        """The Monte Carlo standard error of ``total`` (nats)."""
        return math.sqrt(float(self.var.sum()))

    def nats_per_token(self) -> tuple[float, float]:
        """(bound, standard error) per scored token."""
        n = float(self.tokens.sum())
        return self.total / n, self.total_se / n

    def bits_per_char(self, chars: int) -> tuple[float, float]:
        """(bound, standard error) in bits per character of the scored text (``chars`` of it)."""
        scale = 1.0 / (math.log(2) * chars)
        return self.total * scale, self.total_se * scale


def clock_constant(kappa_max: float) -> float:
    """Per pending column, the exact part of the bound: -log K.

    It is E[log(1 - kappa(tau))] - log K for the column's switch time (kappa(tau) ~ U[0, K]),
    -1 - (1 - K) log(1 - K) / K - log K, plus the integral of w(t) P(pending at t) over [0, T],
    1 + (1 - K) log(1 - K) / K, which ``bound_terms`` takes out of the estimated outflow.
    """
    return -math.log(kappa_max)


def log_coupling(batch: AlignedBatch, coupling: Coupling, gaps: Gaps) -> torch.Tensor:
    """The log-probability log a(z | x0, x1) of each row's alignment: (B,) float64.

    ``noise`` with random gaps puts |n - m| gap columns uniformly among max(n, m): -log C(k, g).
    Left / right gaps and the optimal (rapidfuzz) alignment are deterministic: 0.
    """
    if coupling != "noise" or gaps != "random":
        return torch.zeros(batch.z0.shape[0], dtype=torch.float64)
    suffix = ~batch.given
    n = ((batch.z0 != BLANK) & suffix).sum(1).double()
    m = ((batch.z1 != BLANK) & suffix).sum(1).double()
    k, g = torch.maximum(n, m), (n - m).abs()
    return -(torch.lgamma(k + 1) - torch.lgamma(g + 1) - torch.lgamma(k - g + 1))


def sample_times(
    samples: int, rows: int, kappa_max: float, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draws of v = kappa(t), ``samples`` per row, stratified, from the mixture proposal.

    The proposal: p(v) = (1 - s) / K + s / ((1 - v) L) on [0, K], L = -log(1 - K),
    s = ``LOG_SHARE``.

    Returns:
        v (rows, samples) float64 and p(v) (rows, samples) float64.
    """
    K, L = kappa_max, -math.log1p(-kappa_max)
    u = (
        torch.arange(samples, dtype=torch.float64)[None]
        + torch.rand(rows, samples, generator=generator, dtype=torch.float64)
    ) / samples
    s = LOG_SHARE
    uniform = u < 1 - s
    v = torch.where(uniform, u / (1 - s) * K, -torch.expm1(-(u - (1 - s)) / s * L))
    v = v.clamp(0.0, K)
    density = (1 - s) / K + s / ((1 - v) * L)
    return v, density


def bound_terms(
    model: RateModel,
    scheduler: Scheduler,
    batch: AlignedBatch,
    v: torch.Tensor,
    density: torch.Tensor,
    *,
    kappa_max: float = DEFAULT_KAPPA_MAX,
    banned_token_ids: Sequence[int] = (),
    pad_token_id: int = 0,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """One importance sample of outflow + edit terms for each row of an aligned batch.

    Args:
        model: a ``RateModel`` (called under ``no_grad``).
        scheduler: the model's kappa scheduler.
        batch: (B, K) alignments, one coupling draw per row.
        v: (B,) float64 draws of kappa(t) in [0, kappa_max].
        density: (B,) float64, their proposal density.
        kappa_max: K = kappa(T), where the process is stopped.
        banned_token_ids: tokens the model's Q never draws.
        pad_token_id: the id written into x_t's padding.
        generator: source of randomness (the forced column, the path).
        device: where the model runs (default: the CPU).

    Returns:
        (B,) float64: outflow estimate + edit estimate (the outflow alone for rows with no
        pending column).
    """
    K = kappa_max
    B, C = batch.z0.shape
    pending = (batch.z0 != batch.z1) & ~batch.given  # (B, C)
    n = pending.sum(1)  # (B,)
    keys = torch.rand(B, C, generator=generator).masked_fill(~pending, -1.0)
    forced = keys.argmax(1)  # one pending column per row, uniformly
    force = torch.rand(B, generator=generator) < FORCE_SHARE
    switch = (v / K).float()[:, None].expand(B, C).clone()
    rows = torch.arange(B)[force]
    switch[rows, forced[force]] = 0.0
    t = scheduler.inverse(v).float()
    path = sample_path(
        batch, scheduler, t, kappa=switch, pad_token_id=pad_token_id, generator=generator
    )
    dev = torch.device(device) if device is not None else torch.device("cpu")
    with torch.no_grad():
        out = model(**{k: x.to(dev) for k, x in path.model_inputs().items()})
    rates = out.rates.double().cpu()
    outflow = (rates * path.rate_mask).sum(dim=(1, 2))  # (B,)

    eb, op = path.edit_batch, path.edit_op
    log_rate = torch.log(rates[eb, path.edit_pos, op].clamp_min(1e-300))  # (E,)
    log_q = torch.zeros_like(log_rate)
    for code, logits in ((INS, out.ins_logits), (SUB, out.sub_logits)):
        sel = op == code
        if sel.any():
            lg = logits.double().cpu()
            if len(banned_token_ids):
                lg[:, list(banned_token_ids)] = float("-inf")
            row, tok = path.edit_row[sel], path.edit_token[sel]
            log_q[sel] = lg[row, tok] - torch.logsumexp(lg[row], dim=-1)
    g = torch.zeros(B, dtype=torch.float64).index_add(0, eb, -(log_rate + log_q))
    m = torch.bincount(eb, minlength=B).double()  # pending edits of the drawn state
    nd = n.double()
    expected = nd * (1 - v / K)  # E[m] when no column is forced
    # the state's density relative to the path's own law q_v at v: (1 - b) + b m / E[m]
    # (a row with nothing pending cannot be forced: its state is drawn from q_v itself)
    mix = torch.where(n > 0, (1 - FORCE_SHARE) + FORCE_SHARE * m / expected.clamp_min(1e-300), 1.0)
    # the model's outflow less the pending count (whose integral is exact: ``clock_constant``),
    # so a model whose rates match the pending edits adds no noise
    outflow_est = (outflow - m) / ((1 - v) * density * mix)
    edit_est = g / ((1 - v / K) * K * density * mix)
    edit_est = torch.where(m > 0, edit_est, torch.zeros_like(edit_est))
    # a row with nothing pending (x1 = x0, e.g. an empty completion) still pays the
    # probability that the model makes no edit: the integral of w times its outflow
    return outflow_est + edit_est


def nll_bound(
    model: RateModel,
    scheduler: Scheduler,
    x1s: Sequence[Sequence[int]],
    x0_sampler: X0Sampler,
    *,
    frozen: Sequence[int] | None = None,
    samples: int = 8,
    kappa_max: float = DEFAULT_KAPPA_MAX,
    coupling: Coupling = "noise",
    gaps: Gaps = "random",
    mask_token_id: int | None = None,
    vocab_size: int | None = None,
    exclude_ids: Sequence[int] = (),
    banned_token_ids: Sequence[int] = (),
    pad_token_id: int = 0,
    batch_size: int = 64,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    progress=None,
) -> NLLBound:
    """Estimate an upper bound on -log p(x1) for each sequence (see the module docstring).

    Args:
        model: a ``RateModel`` (eval mode; called under ``no_grad``).
        scheduler: the model's kappa scheduler.
        x1s: N token sequences, each starting with its frozen prefix (the anchor, a prompt).
        x0_sampler: the model's source distribution; x0 = prefix + a fresh draw per sample.
        frozen: N prefix lengths (default 1: the anchor).
        samples: Monte Carlo samples per sequence (>= 2 for a standard error).
        kappa_max: K = kappa(T), where the model's process is stopped (0 < K < 1).
        coupling: the variational coupling (any choice gives a valid bound; the model's
            training choice gives the tightest).
        gaps: gap placement of the ``"noise"`` coupling.
        mask_token_id: for drawing x0 (see ``X0Sampler.sample``).
        vocab_size: for drawing x0 (see ``X0Sampler.sample``).
        exclude_ids: for drawing x0 (see ``X0Sampler.sample``).
        banned_token_ids: tokens the model's Q never draws (as in ``BatchSampler``).
        pad_token_id: the id written into x_t's padding.
        batch_size: rows per forward pass.
        generator: source of randomness (x0, coupling, times, paths).
        device: where the model runs (default: the CPU).
        progress: optional callable(done_rows, total_rows).

    Returns:
        ``NLLBound``.
    """
    if not 0 < kappa_max < 1:
        raise ValueError(f"kappa_max must be in (0, 1), got {kappa_max}")
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    N = len(x1s)
    frozen = [1] * N if frozen is None else list(frozen)
    rows = [(i, s) for i in range(N) for s in range(samples)]
    v_all, dens_all = sample_times(samples, N, kappa_max, generator)
    est = torch.zeros(N, samples, dtype=torch.float64)
    const = clock_constant(kappa_max)
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        x1b = [list(x1s[i]) for i, _ in chunk]
        fb = [frozen[i] for i, _ in chunk]
        x0b = [
            x1[:f]
            + x0_sampler.sample(
                generator,
                mask_token_id=mask_token_id,
                vocab_size=vocab_size,
                exclude_ids=exclude_ids,
            ).tolist()
            for x1, f in zip(x1b, fb)
        ]
        batch = align_batch(x0b, x1b, fb, coupling=coupling, gaps=gaps, generator=generator)
        idx_i = torch.tensor([i for i, _ in chunk])
        idx_s = torch.tensor([s for _, s in chunk])
        v, dens = v_all[idx_i, idx_s], dens_all[idx_i, idx_s]
        terms = bound_terms(
            model, scheduler, batch, v, dens,
            kappa_max=kappa_max, banned_token_ids=banned_token_ids,
            pad_token_id=pad_token_id, generator=generator, device=device,
        )  # fmt: skip
        n = ((batch.z0 != batch.z1) & ~batch.given).sum(1).double()
        est[idx_i, idx_s] = log_coupling(batch, coupling, gaps) + n * const + terms
        if progress is not None:
            progress(min(start + batch_size, len(rows)), len(rows))
    tokens = torch.tensor([len(x) - f for x, f in zip(x1s, frozen)])
    var = est.var(1) / samples if samples > 1 else torch.full((N,), float("nan"))
    return NLLBound(nats=est.mean(1), var=var, tokens=tokens, samples=samples)
