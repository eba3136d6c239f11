"""One tau-leaping step as pure tensor functions.

A step runs from t to t' = t + h. The model's normalised rates lam[i] at x_t estimate how many
edits of each kind are pending at position i (insertions after i; a deletion or substitution
of i), and each pending edit switches during the step with probability

    f = (kappa(t') - kappa(t)) / (1 - kappa(t))        (``Scheduler.jump_fraction``; 1 at t' = 1)

Two firing rules turn (lam, f) into edits (``FIRING``):

- ``"posterior"`` (default). Deletion or substitution fires with probability min(1, lam * f).
  The number of insertions after i is K ~ Binomial(N, f) with N = floor(lam) + Bernoulli(lam -
  floor(lam)): E[K] = lam * f, the expected number of pending insertions that switch in the
  step. This is exact for the quantity the loss teaches (lam = E[#pending | x_t, t]): for a slot
  holding at most one pending edit (always so for deletions and substitutions) p = lam * f is
  its probability to switch, and a model sure of N pending insertions (lam = N) gets K ~
  Binomial(N, f), all N on the last step (f = 1). Several insertions in one gap draw their
  tokens independently from Q_ins[i] (the tau-leap's approximation) and land in draw order.
- ``"hazard"``. At most one insertion per gap; an edit fires with probability 1 - (1 - f)^lam
  = 1 - exp(-lam * integral of w over the step): exact for a CTMC whose intensity w(s) * lam is
  held over the step. On the last step (f = 1) it fires every slot with lam > 0, so a model's
  small rates at finished positions all fire there: kept for comparison, not the default.

Both agree with the paper's first-order rule h * w(t) * lam for small steps, and neither needs
a clamp: f stays in [0, 1] for any schedule, even where w(0) is infinite.

A deletion-or-substitution is a deletion with probability lam_del / (lam_del + lam_sub). A
position can get insertions after it and a deletion or substitution of itself. All fired edits
apply at once, left to right. The sampler (``BatchSampler``) draws the uniforms and tokens and
keeps the books; these functions hold the arithmetic, so tests can check it against slow
references.
"""

from __future__ import annotations

import torch

from .protocol import DEL, INS, SUB
from .sampler_types import EditOp

FIRING = ("posterior", "posterior-multi", "hazard")


def fire_probability(
    lam: torch.Tensor, frac: torch.Tensor, rule: str = "posterior"
) -> torch.Tensor:
    """Probability that an edit with normalised rate ``lam`` fires at least once in a step of
    jump fraction ``frac`` (broadcasting; lam >= 0, 0 <= frac <= 1).

    "posterior": min(1, lam * frac) (for insertions: P(K >= 1) only when lam <= 1).
    "hazard": 1 - (1 - frac)^lam.
    """
    if rule in ("posterior", "posterior-multi"):
        return (lam * frac).clamp(max=1.0)
    if rule == "hazard":
        log_stay = torch.log1p(-frac)  # log((1 - kappa(t')) / (1 - kappa(t))), -inf at t' = 1
        p = -torch.expm1(lam * log_stay)
        return torch.where(lam > 0, p, torch.zeros_like(p))
    raise ValueError(f"firing rule must be one of {', '.join(FIRING)}, got {rule!r}")


def insertion_counts(
    lam: torch.Tensor, frac: torch.Tensor, u: torch.Tensor, multi: bool = True
) -> torch.Tensor:
    """Numbers of insertions under the posterior rules, one uniform per slot.

    K ~ (1 - phi) Binomial(n, f) + phi Binomial(n + 1, f) with n = floor(lam), phi = lam - n,
    drawn as K = #{k >= 1 : u < P(K >= k)} (so K >= 1 exactly when u < P(K >= 1), which is
    min(1, lam * f) for lam <= 1). With ``multi=False`` only the last step (f = 1) may insert
    several tokens in one gap; other steps insert one with probability min(1, lam * f).

    Args:
        lam: (B, L) float >= 0. frac: (B, 1) float in [0, 1]. u: (B, L) uniforms in [0, 1).

    Returns:
        (B, L) long.
    """
    lam64 = lam.double()
    f = frac.double().expand_as(lam64)
    count = (u.double() < (lam64 * f).clamp(max=1.0)).long()  # exact where lam <= 1
    big = (lam64 > 1) & (f > 0)
    if not multi:
        big &= f >= 1
    if not big.any():
        return count
    lam_b, f_b, u_b = lam64[big], f[big], u.double()[big]  # (S,)
    n = lam_b.floor()
    phi = lam_b - n
    k_max = int(n.max()) + 1
    k = torch.arange(k_max + 1, dtype=torch.float64)[None]  # (1, K+1)
    pmf = (1 - phi)[:, None] * _binomial_pmf(n, f_b, k) + phi[:, None] * _binomial_pmf(
        n + 1, f_b, k
    )  # (S, K+1)
    survival = pmf.flip(1).cumsum(1).flip(1)  # P(K >= k)
    count[big] = (u_b[:, None] < survival[:, 1:]).sum(1)
    return count


def _binomial_pmf(n: torch.Tensor, f: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Binomial(n, f) pmf at k: (S,), (S,), (1, K) -> (S, K) float64; 0 outside 0..n."""
    n, f = n[:, None], f[:, None]
    inside = k <= n
    kk = torch.minimum(k, n)
    log_choose = torch.lgamma(n + 1) - torch.lgamma(kk + 1) - torch.lgamma(n - kk + 1)
    # f = 1: all n switch (0 * log 0 terms are 0 by convention)
    log_f = torch.where(kk > 0, kk * torch.log(f), torch.zeros_like(kk))
    log_stay = torch.where(n - kk > 0, (n - kk) * torch.log1p(-f), torch.zeros_like(kk))
    return torch.where(inside, torch.exp(log_choose + log_f + log_stay), torch.zeros_like(kk))


def fire_edits(
    lam: torch.Tensor,
    frac: torch.Tensor,
    u: torch.Tensor,
    room: torch.Tensor,
    rule: str = "posterior",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Decide which edits fire in one step.

    Args:
        lam: (B, L, 3) float rates (ins, del, sub), zero where no edit is allowed.
        frac: (B, 1) float, each row's jump fraction over the step (1 on its last step).
        u: (>= 3, B, L) uniforms: insertions, fire-del/sub, del-vs-sub.
        room: (B,) long, how many tokens each row may still gain net of its deletions' slots:
            cap - current length. The rightmost insertions beyond ``room + deletions`` are
            dropped (the length cap).
        rule: the firing rule, "posterior" or "hazard".

    Returns:
        (ins, dele, sub, capped): ins (B, L) long, the number of insertions after each
        position; dele, sub (B, L) bool; capped (B,) bool, rows that lost insertions.
    """
    if rule in ("posterior", "posterior-multi"):
        ins = insertion_counts(lam[..., INS], frac, u[0], multi=rule == "posterior-multi")
    else:
        ins = (u[0] < fire_probability(lam[..., INS], frac, rule)).long()  # (B, L)
    ds_rate = lam[..., DEL] + lam[..., SUB]
    ds = u[1] < fire_probability(ds_rate, frac, rule)
    dele = ds & (u[2] * ds_rate < lam[..., DEL])
    sub = ds & ~dele
    allowed = (room + dele.sum(1))[:, None] - (ins.cumsum(1) - ins)  # room left before slot i
    kept = torch.minimum(ins, allowed.clamp(min=0))
    return kept, dele, sub, (kept < ins).any(1)


def apply_edits(
    ids: torch.Tensor,
    lengths: torch.Tensor,
    ins: torch.Tensor,
    dele: torch.Tensor,
    ins_tokens: torch.Tensor,
    pad_token_id: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply insertions and deletions to a padded batch (substitutions already written in ids).

    Args:
        ids: (B, L) long, the tokens after substitution. lengths: (B,) long.
        ins: (B, L) long (or bool), the number of tokens inserted after position i.
        dele: (B, L) bool, fired deletions (of i).
        ins_tokens: (B, L, J) long, the tokens inserted after i in order (J >= max ins), or
            (B, L) when no position gets more than one.

    Returns:
        (new_ids, new_lengths): (B, L') long right-padded with ``pad_token_id``, (B,) long.
    """
    B, L = ids.shape
    ins = ins.long()
    if ins_tokens.dim() == 2:
        ins_tokens = ins_tokens[..., None]
    keep = (torch.arange(L, device=ids.device)[None] < lengths[:, None]) & ~dele
    width = keep.long() + ins  # tokens each position emits: (B, L)
    start = width.cumsum(1) - width  # where they go
    new_len = width.sum(1)
    out = ids.new_full((B, max(int(new_len.max()), 1)), pad_token_id)
    kb, ki = keep.nonzero(as_tuple=True)
    out[kb, start[kb, ki]] = ids[kb, ki]
    J = ins_tokens.shape[2]
    slot = torch.arange(J, device=ids.device)[None, None]  # (1, 1, J)
    ib, ii, ij = (slot < ins[..., None]).nonzero(as_tuple=True)
    out[ib, start[ib, ii] + keep[ib, ii].long() + ij] = ins_tokens[ib, ii, ij]
    return out, new_len


def row_edits(
    old: list[int],
    new: list[int],
    added: list[list[int]],
    dele: list[bool],
    sub: list[bool],
) -> list[EditOp]:
    """One row's fired edits as ``EditOp`` values, left to right (positions before the step).

    old / new: the row's tokens before and after substitution; added[i]: the tokens inserted
    after i, in order. At one position a deletion or substitution comes before the insertions
    after it; several insertions after one position are listed in text order, each with that
    position (replaying the list right to left rebuilds the row).
    """
    ops: list[EditOp] = []
    for i, (d, s, toks) in enumerate(zip(dele, sub, added)):
        if d:
            ops.append(EditOp("del", i, None, old[i]))
        elif s:
            ops.append(EditOp("sub", i, new[i], old[i]))
        ops.extend(EditOp("ins", i, tok, None) for tok in toks)
    return ops
