"""Randomized Haseman–Elston (method of moments) from streamed marker statistics (pure numpy).

Model for one trait on its n samples with fixed effects C (n, c) and P = I − C(CᵀC)⁻¹Cᵀ:
y = Cβ + Σ_k g_k + e, Cov(y) = Σ_k σ²_k K_k + σ²_e I with K_k = W_k W_kᵀ / M_k. Matching
E[yᵀP K_k P y] and E[yᵀP y] to their observed values gives the normal equations

    Σ_l tr(P K_k P K_l) σ²_l + tr(P K_k) σ²_e = yᵀP K_k P y      (k = 1..K)
    Σ_l tr(P K_l) σ²_l       + (n − c) σ²_e  = yᵀP y

(RHE-reg / RHE-mc, Pazokitoroudi et al. 2020). tr(P K_k) and yᵀP K_k P y are exact sums over
markers; tr(P K_k P K_l) is estimated with B probes u_b = P z_b, z_b ~ N(0, I):
(1/B) Σ_b (K_k u_b)ᵀ P (K_l u_b).

Every quantity is a sum over markers except the trace, which pairs H_k = Σ_{m∈k} w_m w_mᵀ U
with H_l. The block jackknife over J marker blocks needs each estimate with block j left
out; for the traces that is

    ⟨H_k − H_jk, P(H_l − H_jl)⟩ = ⟨H_k, PH_l⟩ − ⟨H_jk, PH_l⟩ − ⟨H_jl, PH_k⟩ + ⟨H_jk, PH_jl⟩,

so the streamed statistics are, per marker m (of component k, block j): its squared residual
products r_m = (w_mᵀ P y)² and its trace share s_m = ‖w_m‖² − ‖Qᵀw_m‖² (Q an orthonormal
basis of C); and per block the cross products ⟨H_jk, PH_l⟩, whose sum over j is ⟨H_k, PH_l⟩,
and the local products ⟨H_jk, PH_jl⟩.

The jackknife replicates hold y fixed, so they see every source of variance but the trait's
overall scale: deleting markers changes yᵀP K_k P y, never yᵀP y, so that σ̂ scaled by any
factor common to all its components (what a larger or smaller yᵀP y does) varies across
replicates by nothing. The SEs add that scale's variance: under the model
Var(yᵀP y) = 2 tr(P V P V) = 2 σᵀ A σ with A the normal equations' matrix (its entries are the
traces tr(P K_k P K_l), tr(P K_k) and n − c), and y ↦ a·y scales σ by a², so the relative
variance v = 2 σᵀAσ / (yᵀP y)² adds v σ σᵀ to the jackknife's covariance of σ. The h² are
ratios of σ and do not change with the scale; Vp, almost exactly yᵀP y / (n − c), gets nearly
all of its variance from it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dask_h2.jackknife import jackknife_se


@dataclass(frozen=True, kw_only=True)
class GroupStatistics:
    """What the passes over the genotypes give for F fits on one group of samples (a fit: one trait, or the
    cross terms of two traits), markers used in any fixed order.

    ``component`` (m,) int and ``block`` (m,) int of each marker; ``residual_sums`` (J, K, F) = Σ over
    the markers of block j and component k of (w_mᵀP y_a)(w_mᵀP y_b) for fit f of traits a and b
    (:func:`residual_sums`); ``trace_shares`` (m,) = ‖w_m‖² − ‖Qᵀ w_m‖² over the group's samples;
    ``cross_products`` (J, K, K) = ⟨H_jk, P H_l⟩; ``block_products`` (J, K, K) = ⟨H_jk, P H_jl⟩;
    ``yy`` (F,) = y_aᵀP y_b, ``n_samples`` and ``n_fixed`` (rank of C), ``n_probes`` = B. Blocks
    without a marker in use are left out of the jackknife.
    """

    component: np.ndarray
    block: np.ndarray
    residual_sums: np.ndarray
    trace_shares: np.ndarray
    cross_products: np.ndarray
    block_products: np.ndarray
    yy: np.ndarray
    n_samples: int
    n_fixed: int
    n_probes: int

    @property
    def n_components(self) -> int:
        return self.cross_products.shape[1]

    @property
    def n_blocks(self) -> int:
        return self.block_products.shape[0]


def residual_sums(columns: np.ndarray, fits: np.ndarray, *, block: np.ndarray, component: np.ndarray,
                  n_blocks: int, n_components: int) -> np.ndarray:
    """Σ_{m ∈ (j, k)} c_m,a c_m,b (J, K, F) over the markers of each (block j, component k), for the
    per-marker ``columns`` (m, T) c_m,t = w_mᵀP y_t and the ``fits`` (F, 2) pairs of columns (a, b): one
    product CᵀC (T, T) per (block, component), so that every pair of T traits costs m·T² operations
    and no (m, F) array.

    Examples
    --------
    >>> c = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    >>> residual_sums(c, np.array([[0, 1]]), block=np.array([0, 0, 1]), component=np.zeros(3, int),
    ...               n_blocks=2, n_components=1)[:, 0, 0]
    array([14., 30.])
    """
    index = block * n_components + component
    order = np.argsort(index, kind="stable")
    starts = np.searchsorted(index[order], np.arange(n_blocks * n_components + 1))
    out = np.zeros((n_blocks * n_components, fits.shape[0]))
    for q in range(n_blocks * n_components):
        if starts[q + 1] > starts[q]:
            part = columns[order[starts[q]:starts[q + 1]]]
            out[q] = (part.T @ part)[fits[:, 0], fits[:, 1]]
    return out.reshape(n_blocks, n_components, fits.shape[0])


@dataclass(frozen=True, kw_only=True)
class MomentSystem:
    """The normal equations of F fits on one group of samples: ``lhs`` (..., K + 1, K + 1) σ = ``rhs``
    (F, ..., K + 1), last entry σ²_e (the ``...`` axis: one system per jackknife replicate); the fits
    share ``lhs``."""

    lhs: np.ndarray
    rhs: np.ndarray

    def solve(self) -> np.ndarray:
        """σ²_1..σ²_K, σ²_e (F, ..., K + 1): one factorization of each ``lhs`` for all the fits."""
        return np.moveaxis(np.linalg.solve(self.lhs, np.moveaxis(self.rhs, 0, -1)), -1, 0)


@dataclass(frozen=True, kw_only=True)
class MomentEstimates:
    """Variance components ``sigma2`` (K + 1,) (last = σ²_e) with their jackknife SEs, the
    per-component ``h2`` (K,) = σ²_k / Vp and total, σ²_g = Σ_k σ²_k and Vp, each with its SE,
    and ``n_markers`` (K,)."""

    sigma2: np.ndarray
    sigma2_se: np.ndarray
    h2: np.ndarray
    h2_se: np.ndarray
    h2_total: float
    h2_total_se: float
    sigma_g2: float
    sigma_g2_se: float
    vp: float
    vp_se: float
    n_markers: np.ndarray
    n_blocks: int


def per_block(values: np.ndarray, block: np.ndarray, *, component: np.ndarray, n_blocks: int,
              n_components: int) -> np.ndarray:
    """Σ of ``values`` (m, ...) over the markers of each (block, component): (J, K, ...)."""
    index = block * n_components + component
    flat = values.reshape(values.shape[0], -1)
    out = np.stack([np.bincount(index, weights=flat[:, q], minlength=n_blocks * n_components)
                    for q in range(flat.shape[1])], axis=-1)
    return out.reshape((n_blocks, n_components) + values.shape[1:])


@dataclass(frozen=True, kw_only=True)
class MarkerSums:
    """Sums over the markers in use, per component k: ``counts`` M_k (..., K), ``trace`` Σ_{m∈k} s_m (..., K)
    and ``cross`` ⟨H_k, PH_l⟩ (..., K, K) (the ``...`` axis: one per jackknife replicate), and ``residual``
    Σ_{m∈k} r_m (F, ..., K) of each of F fits."""

    counts: np.ndarray
    residual: np.ndarray
    trace: np.ndarray
    cross: np.ndarray


def moment_system(sums: MarkerSums, *, yy: np.ndarray, n_samples: int, n_fixed: int, n_probes: int) -> MomentSystem:
    """The normal equations from the marker ``sums``, ``yy`` (F,) = yᵀP y of each fit, the samples, the fixed
    effects' rank and the probes B."""
    counts = sums.counts
    size, lead = counts.shape[-1], counts.shape[:-1]
    lhs = np.empty(lead + (size + 1, size + 1))
    cross = 0.5 * (sums.cross + np.swapaxes(sums.cross, -1, -2))  # ⟨H_k, PH_l⟩ = ⟨H_l, PH_k⟩ up to rounding
    lhs[..., :size, :size] = cross / (n_probes * counts[..., :, None] * counts[..., None, :])
    lhs[..., :size, size] = lhs[..., size, :size] = sums.trace / counts
    lhs[..., size, size] = n_samples - n_fixed
    yy = np.broadcast_to(np.reshape(yy, (-1,) + (1,) * (len(lead) + 1)), (len(yy),) + lead + (1,))
    return MomentSystem(lhs=lhs, rhs=np.concatenate([sums.residual / counts, yy], axis=-1))


def heritabilities(sigma2: np.ndarray) -> np.ndarray:
    """h²_1..h²_K, their total, σ²_g = Σ σ²_k and Vp (K + 3,) of σ²_1..σ²_K, σ²_e (K + 1,), with h²_k = σ²_k / Vp."""
    vp = sigma2.sum()
    h2 = sigma2[:-1] / vp
    return np.concatenate([h2, [h2.sum(), sigma2[:-1].sum(), vp]])


def fit_moments(solution: Solution, fit: int) -> MomentEstimates:
    """σ² and h² of one trait, fit ``fit`` of ``solution`` (a trait's own fit, not the cross terms of two),
    with delete-one-block jackknife SEs."""
    system, sigma2, replicates = solution.system, solution.sigma2[fit], solution.replicates[fit]
    size = sigma2.shape[0] - 1
    scale = scale_variance(system, sigma2, yy=float(solution.yy[fit]))
    derived = heritabilities(sigma2)
    total, sigma_g2, vp = size, size + 1, size + 2
    scaled = np.zeros(derived.shape[0], dtype=bool)
    scaled[[sigma_g2, vp]] = True  # variances scale with y²; the h² do not
    sigma2_se = with_scale(jackknife_se(replicates), sigma2, scale=scale)
    derived_se = with_scale(jackknife_se(np.array([heritabilities(r) for r in replicates])), derived * scaled,
                            scale=scale)
    return MomentEstimates(sigma2=sigma2, sigma2_se=sigma2_se, h2=derived[:size], h2_se=derived_se[:size],
                           h2_total=float(derived[total]), h2_total_se=float(derived_se[total]),
                           sigma_g2=float(derived[sigma_g2]), sigma_g2_se=float(derived_se[sigma_g2]),
                           vp=float(derived[vp]), vp_se=float(derived_se[vp]),
                           n_markers=solution.counts.astype(np.int64), n_blocks=replicates.shape[0])


@dataclass(frozen=True, kw_only=True)
class Solution:
    """The normal equations ``system`` of F fits on one group of samples, their solutions ``sigma2`` σ
    (F, K + 1), their delete-one-block ``replicates`` (F, J', K + 1) over the blocks with a marker in use,
    the markers ``counts`` M_k (K,) and ``yy`` (F,) (the right-hand sides' last entries)."""

    system: MomentSystem
    sigma2: np.ndarray
    replicates: np.ndarray
    counts: np.ndarray
    yy: np.ndarray

    def take(self, fits: np.ndarray) -> Solution:
        """The fits ``fits`` (P,) int of this solution, in that order."""
        return Solution(system=MomentSystem(lhs=self.system.lhs, rhs=self.system.rhs[fits]), sigma2=self.sigma2[fits],
                        replicates=self.replicates[fits], counts=self.counts, yy=self.yy[fits])


def solve_with_replicates(stats: GroupStatistics) -> Solution:
    """The :class:`Solution` of the F fits of ``stats``: for a fit of one trait its variance components,
    for the cross terms of two traits (residual sums of (w_mᵀP y₁)(w_mᵀP y₂), yy = y₁ᵀP y₂) their
    covariances. Raises ValueError when a component has no markers or lies in one jackknife block."""
    size, blocks = stats.n_components, stats.n_blocks
    layout = {"component": stats.component, "n_blocks": blocks, "n_components": size}
    counts = per_block(np.ones(stats.component.shape[0]), stats.block, **layout)
    trace = per_block(stats.trace_shares, stats.block, **layout)
    residual, cross = np.moveaxis(stats.residual_sums, -1, 0), stats.cross_products  # (F, J, K), (J, K, K)
    common = {"yy": stats.yy, "n_samples": stats.n_samples, "n_fixed": stats.n_fixed, "n_probes": stats.n_probes}
    totals = MarkerSums(counts=counts.sum(0), residual=residual.sum(1), trace=trace.sum(0), cross=cross.sum(0))
    empty = np.flatnonzero(totals.counts == 0)
    if empty.size:
        raise ValueError(f"component {int(empty[0])} has no markers")
    system = moment_system(totals, **common)
    kept = np.flatnonzero(counts.sum(axis=1) > 0)  # a block whose markers all failed QC changes nothing
    left = MarkerSums(counts=totals.counts - counts[kept], residual=totals.residual[:, None] - residual[:, kept],
                      trace=totals.trace - trace[kept],
                      cross=totals.cross - cross[kept] - np.swapaxes(cross[kept], 1, 2) + stats.block_products[kept])
    if np.any(left.counts == 0):
        j = int(kept[np.flatnonzero((left.counts == 0).any(axis=1))[0]])
        raise ValueError(f"a component lies entirely in jackknife block {j}: its standard error is undefined")
    return Solution(system=system, sigma2=system.solve(), replicates=moment_system(left, **common).solve(),
                    counts=totals.counts, yy=np.asarray(stats.yy, dtype=np.float64))


def scale_variance(system: MomentSystem, sigma2: np.ndarray, *, yy: float) -> float:
    """v = Var(yᵀP y) / (yᵀP y)² = 2 σᵀAσ / (yᵀP y)² under the fitted model (module docstring), for the
    normal equations' matrix A (K + 1, K + 1), σ (K + 1,) and ``yy`` = yᵀP y; 0 when yᵀP y is 0."""
    spread = 2.0 * float(sigma2 @ system.lhs @ sigma2)
    return max(spread, 0.0) / yy**2 if yy > 0 else 0.0


def with_scale(jackknife: np.ndarray, values: np.ndarray, *, scale: float) -> np.ndarray:
    """SEs (q,) from the ``jackknife`` SEs (q,) and the variance ``scale`` · value² of the trait's scale for
    quantities of degree one in y² (``values`` (q,), 0 for the scale-free ones)."""
    return np.sqrt(jackknife**2 + scale * values**2)


MIN_BLOCKS = 20  # the jackknife's variance has J − 1 degrees of freedom: below 20 its SE is off by 16 % or more


def jackknife_blocks(n_markers: int, n_blocks: int) -> np.ndarray:
    """Block (m,) of each of ``n_markers`` markers in order: ``n_blocks`` J blocks of consecutive markers,
    of ⌊m/J⌋ or ⌈m/J⌉ markers each (marker i is in block ⌊i·J/m⌋). Raises ValueError unless
    ``MIN_BLOCKS`` ≤ J ≤ m."""
    if n_blocks < MIN_BLOCKS:
        raise ValueError(f"{n_blocks} jackknife blocks: at least {MIN_BLOCKS} are needed for a usable SE")
    if n_blocks > n_markers:
        raise ValueError(f"{n_blocks} jackknife blocks: more than the {n_markers} markers selected")
    return np.arange(n_markers, dtype=np.int64) * n_blocks // n_markers
