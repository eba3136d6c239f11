"""Localized paths (Edit Flows, appendix C.1): edits that spread to their neighbours.

On a plain path every alignment column j switches (z0[j] -> z1[j]) at its own time s_j,
independently, with P(s_j <= t) = kappa(t), i.e. at the hazard

    lam_indep(t) = kappa'(t) / (1 - kappa(t)) = w(t)                  (``Scheduler.weight``)

so a long noisy x_t mixes unrelated tokens everywhere. On a localized path each column still
*ignites* at s_j (same law), and a switched column also switches its left and right neighbour
columns at a constant rate ``lam_prop`` each. An unswitched column with n switched neighbours
therefore switches at the hazard

    h_j(t) = lam_indep(t) + lam_prop * n_j(t)                                            (1)

Columns are the alignment's (B, K) columns, blanks included, not x_t positions.

Sites. Every column that is neither padding (BLANK, BLANK) nor given (the anchor, a prompt, a
frozen span) is a site of the line; keep columns (z0 == z1) are sites too: they switch
invisibly, as on plain paths, and pass the spread on, so two edits separated by an unchanged
token still attract each other. Given columns are not edits: they never ignite and never pass
the spread on, so they cut a row into independent lines (each hole of an infilling layout is
its own line) and padding never carries anything, within a row or across rows.

Exact parallel sampling (``sample_switch_times``). Give each directed edge between adjacent
sites an independent passage time tau ~ Exp(lam_prop), and set

    T_j = min over sites k of ( s_k + sum of the tau on the path k -> j )                (2)

(first-passage percolation). T has the law of the switch times of (1): column j switches at
the first of its ignition and the arrivals from its neighbours, T_j = min(s_j, T_{j-1} +
tau_{j-1 -> j}, T_{j+1} + tau_{j+1 -> j}), whose solution is the shortest path (2); and given
everything up to time t, an unswitched site's remaining ignition time has hazard
lam_indep(t) (only s_j > t is known) and each edge into it from a switched neighbour k has a
remaining passage time Exp(lam_prop) (only tau > t - T_k is known; memorylessness), all
independent, which is hazard (1). On a line the shortest path from k to j is the monotone
one, so with C_j = sum_{i < j} tau_{i -> i+1} (an exclusive cumsum) the paths from the left
give

    R_j = C_j + min_{k <= j} (s_k - C_k)         (a cummin)

and, with D_j = sum_{i < j} tau_{i+1 -> i}, those from the right L_j = min_{k >= j} (s_k + D_k)
- D_j (a reversed cummin); T_j = min(R_j, L_j). A few (B, K) cumsum / cummin ops, no loop.
(The paper describes the draw as per-column on-times plus Poisson counts of left / right
propagation; (2) is the same process in closed form and needs no truncation.) An edge that
touches a non-site gets the passage time ``barrier`` = 1 + max s over sites, and a non-site
never ignites before it: a path through one is then longer than max s >= s_j >= T_j, so it
never attains the minimum, and the cumsums stay finite (no inf - inf). z_t[j] = z1[j] iff
T_j <= t, and every site has switched by t = 1 (T_j <= s_j <= 1). With lam_prop = 0, T = s:
exactly the plain path's law.

The loss. For the conditional process the edit of a pending column e fires at h_e(t), so the
edit term of the Edit Flow loss, w(t) * log rate_e on plain paths, becomes h_e(t) * log rate_e,
while the outflow term keeps w(t) * sum lam_hat (the model's rates are normalised by w: the
sampler multiplies them by w). The minimiser at each slot is then

    lam_hat = E[ sum over the slot's pending edits of h_e / w | x_t, t ]

(an edit's neighbours may be keep columns, whose state x_t does not show: the posterior averages
over it, as over everything else x_t hides). ``edit_hazard_factors`` gives the factor
h_e / w = 1 + lam_prop * n_e / w(t) >= 1 for each remaining edit of a path, in the order of
``PathSample``'s edits; ``sample_path(..., lam_prop=...)`` stores them as
``PathSample.edit_weight`` and ``edit_flow_loss`` multiplies each edit's log-rate term by it.

The clamp. ``edit_flow_loss`` clamps w at ``max_weight``: the row's loss is scaled by
min(w, M) / w, a weight on t that leaves the minimiser at every (x_t, t) unchanged. The
consistent clamp for localized paths is the same: the edit term's weight is min(w, M) * h_e / w
= h_e * min(1, M / w), i.e. the loss multiplies its clamped w by the *unclamped* factor
(``clamped_edit_weight``). Clamping h_e itself, or dividing by the clamped w, would move the
minimiser where w > M (late t) away from E[sum h_e / w], the rate the sampler needs. The
factor is large only at small t, where w is small and min(w, M) * h / w = h <= w + 2 lam_prop:
the weight on each log-rate is bounded by M + 2 lam_prop.
"""

from __future__ import annotations

import torch

from .alignment import BLANK, AlignedBatch
from .scheduler import Scheduler

__all__ = [
    "clamped_edit_weight",
    "edit_hazard_factors",
    "first_passage_times",
    "hazard_factor",
    "localized_sites",
    "sample_ignition_times",
    "sample_switch_times",
    "switched_neighbours",
]


def localized_sites(batch: AlignedBatch) -> torch.Tensor:
    """The sites of the spreading line: (B, K) bool, True at columns that can switch.

    A site is neither padding (BLANK, BLANK) nor given (``batch.given`` when the batch has a
    layout, else the frozen prefix).
    """
    z0, z1 = batch.z0, batch.z1
    given = getattr(batch, "given", None)
    if given is None:
        given = torch.arange(z0.shape[1], device=z0.device)[None] < batch.frozen[:, None]
    return ~((z0 == BLANK) & (z1 == BLANK)) & ~given.to(z0.device)


def first_passage_times(
    s: torch.Tensor,
    tau_right: torch.Tensor,
    tau_left: torch.Tensor,
    site: torch.Tensor,
) -> torch.Tensor:
    """Switch times of the spreading process from its ignition and passage times (eq. 2).

    Args:
        s: (B, K) float, the ignition time of each column (ignored at non-sites).
        tau_right: (B, K - 1) float >= 0, the passage time of edge j -> j + 1.
        tau_left: (B, K - 1) float >= 0, the passage time of edge j + 1 -> j.
        site: (B, K) bool, the sites; edges touching a non-site carry nothing.

    Returns:
        T: (B, K) float64, min over sites k of s_k + the passage times on the path k -> j, within
        the run of sites that holds j; +inf at non-sites.
    """
    s = s.double()
    has = site.any()
    barrier = (float(s[site].max()) if has else 0.0) + 1.0
    s = torch.where(site, s, barrier)
    edge = site[:, :-1] & site[:, 1:]  # (B, K - 1)
    right = torch.where(edge, tau_right.double(), barrier)
    left = torch.where(edge, tau_left.double(), barrier)
    zero = torch.zeros_like(s[:, :1])
    c = torch.cat([zero, right.cumsum(1)], 1)  # (B, K), C_j = sum_{i<j} tau_{i -> i+1}
    d = torch.cat([zero, left.cumsum(1)], 1)  # (B, K), D_j = sum_{i<j} tau_{i+1 -> i}
    from_left = c + torch.cummin(s - c, 1).values
    from_right = torch.cummin((s + d).flip(1), 1).values.flip(1) - d
    # k = j gives s_j up to rounding (c_j + s_j - c_j): take it exactly
    t_switch = torch.minimum(torch.minimum(from_left, from_right), s)
    return torch.where(site, t_switch, torch.inf)


def sample_ignition_times(
    site: torch.Tensor, scheduler: Scheduler, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Ignition times s_j with P(s_j <= t) = kappa(t), independent per column.

    Returns (B, K) float64, +inf at non-sites. Drawn as kappa^-1(u), u ~ U(0, 1], so s > 0 and
    s <= 1.
    """
    u = 1.0 - torch.rand(site.shape, generator=generator, dtype=torch.float64)
    s = scheduler.inverse(u.to(site.device))
    return torch.where(site, s, torch.inf)


def sample_switch_times(
    site: torch.Tensor,
    scheduler: Scheduler,
    lam_prop: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Switch times of a localized path: (B, K) site mask -> T (B, K) float64.

    T is +inf at non-sites; column j holds z1 at time t iff T_j <= t.

    Draws the ignition times (``sample_ignition_times``), then, when lam_prop > 0, two
    (B, K - 1) passage times ~ Exp(lam_prop) per adjacent pair (rightward, leftward) and takes
    the first passages (``first_passage_times``). lam_prop = 0: T = s, the plain path's law.
    """
    if not lam_prop >= 0:
        raise ValueError(f"lam_prop must be >= 0, got {lam_prop!r}")
    s = sample_ignition_times(site, scheduler, generator)
    if lam_prop == 0:
        return s
    B, K = site.shape
    tau = torch.empty(2, B, max(K - 1, 0), dtype=torch.float64)
    tau.exponential_(lam_prop, generator=generator)
    tau = tau.to(site.device)
    return first_passage_times(s, tau[0], tau[1], site)


def switched_neighbours(switched: torch.Tensor, site: torch.Tensor) -> torch.Tensor:
    """Count n_j, how many of column j's two neighbours are switched sites.

    (B, K) bool each -> (B, K) long. A non-site neighbour (given, padding) never counts: it does
    not spread.
    """
    on = (switched & site).long()
    n = torch.zeros_like(on)
    n[:, 1:] += on[:, :-1]
    n[:, :-1] += on[:, 1:]
    return n


def hazard_factor(
    n_on: torch.Tensor, t: torch.Tensor, scheduler: Scheduler, lam_prop: float
) -> torch.Tensor:
    """The hazard factor h / w = 1 + lam_prop * n_on / w(t), elementwise (eq. 1 over w).

    float64, never clamped; exactly 1 where n_on = 0 (also where w(t) = 0).
    """
    n = n_on.double()
    w = scheduler.weight(t.double())
    return torch.where(n > 0, 1.0 + lam_prop * n / w, torch.ones_like(n))


def clamped_edit_weight(
    factor: torch.Tensor, t: torch.Tensor, scheduler: Scheduler, max_weight: float | None
) -> torch.Tensor:
    """The weight the loss puts on an edit's log-rate: min(w(t), max_weight) * factor.

    That is h * min(1, max_weight / w); factor and t elementwise (one t per edit). float64.
    """
    w = scheduler.weight(t.double())
    w_c = w if max_weight is None else w.clamp(max=max_weight)
    return w_c * factor.double()


def edit_hazard_factors(
    batch: AlignedBatch,
    switch_times: torch.Tensor,
    t: torch.Tensor,
    scheduler: Scheduler,
    lam_prop: float,
) -> torch.Tensor:
    """h_e / w(t) for every remaining edit of the path these switch times give.

    Args:
        batch: the aligned columns.
        switch_times: (B, K) T from ``sample_switch_times``.
        t: (B,) float, the path's times (``PathSample.t``).
        scheduler: the path's kappa scheduler; gives w(t).
        lam_prop: the spreading rate the switch times were drawn with.

    Returns:
        (E,) float32 >= 1, in the order of ``PathSample.edit_*`` (row-major over columns with
        z_t != z1): 1 + lam_prop * (switched neighbour sites) / w(t).
    """
    site = localized_sites(batch)
    switched = switch_times <= t.double()[:, None]
    pending = site & ~switched & (batch.z0 != batch.z1)
    eb, ec = pending.nonzero(as_tuple=True)
    n_on = switched_neighbours(switched, site)[eb, ec]
    return hazard_factor(n_on, t[eb], scheduler, lam_prop).float()
