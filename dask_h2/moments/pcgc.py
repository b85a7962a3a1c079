"""PCGC for case-control traits (Golan, Lander & Rosset 2014; S-PCGC, Weissbrod, Flint & Rosset 2018),
from the moments pass's statistics (pure numpy and scipy).

A disease is a liability-threshold trait: l_i = c(x_i) + g_i + e_i, Var(g + e | x) = 1,
Var(g | x) = h²_L, case iff l_i exceeds a threshold; the study over-samples cases. The
covariates x_i (intercept, PCs, covariates) give each individual a population risk k_i and
a study risk p_i (:func:`dask_h2.liability.case_probabilities`); with
u_i = φ(t_i) √(p_i(1 − p_i)) / (k_i(1 − k_i)), t_i = Φ⁻¹(1 − k_i), and z_i = (y_i − p_i)/√(p_i(1 − p_i)), to first order in h²

    E[z_i z_j] = u_i u_j Σ_k h²_k K_k,ij      (i ≠ j),

K_k the kinship of component k of the genotypes projected off the fixed effects (P K_k P). The
diagonal i = j carries no information on h² and is left out: with v = u∘z, D = diag(u²),
A_k = P W_k W_kᵀ P and a_k its diagonal,

    R_k  = Σ_{i≠j} v_i v_j K_k,ij          = [Σ_{m∈k} (w_mᵀP v)² − Σ_i v_i² a_k,i] / M_k
    V_kl = Σ_{i≠j} u_i² u_j² K_k,ij K_l,ij = [tr(D A_k D A_l) − Σ_i u_i⁴ a_k,i a_l,i] / (M_k M_l)

and V h² = R (h²_k on the liability scale conditional on the covariates). The trace is
estimated with probes P U z_b (:mod:`dask_h2.moments.passes`); the jackknife leaves marker blocks
out of R and V together, as the Haseman–Elston fit (:mod:`dask_h2.moments.equations`). The
marginal h² (the fraction of the whole liability variance) is h²_cond / (1 + var_t), var_t the
population variance of the thresholds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dask_h2.jackknife import jackknife_covariance, jackknife_se
from dask_h2.liability import PCGCEstimates, pcgc_estimates
from dask_h2.moments.equations import per_block
from dask_h2.moments.pairs import correlation


@dataclass(frozen=True, kw_only=True)
class PCGCStatistics:
    """What the passes give for one case-control trait (markers used, in any fixed order): ``component``
    (m,) and ``block`` (m,) of each marker; ``residual_products`` (m,) = (w_mᵀP v)² − Σ_i v_i² (P w_m)_i²;
    ``cross_products`` (J, K, K) = ⟨H_jk, P D P H_l⟩ − B Σ_i u_i⁴ a_jk,i a_l,i and ``block_products``
    (J, K, K) the same within block j; ``n_probes`` B."""

    component: np.ndarray
    block: np.ndarray
    residual_products: np.ndarray
    cross_products: np.ndarray
    block_products: np.ndarray
    n_probes: int


def pcgc_replicates(stats: PCGCStatistics) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(h²_k (K,), their delete-one-block replicates (J', K) over the blocks with a marker in use, M_k (K,)).
    With the residual products and traces of two diseases' cross equations, their genetic covariances."""
    size, blocks = stats.cross_products.shape[1], stats.cross_products.shape[0]
    layout = {"component": stats.component, "n_blocks": blocks, "n_components": size}
    counts = per_block(np.ones(stats.component.shape[0]), stats.block, **layout)
    residual = per_block(stats.residual_products, stats.block, **layout)
    cross = stats.cross_products

    def solve(markers: np.ndarray, numerator: np.ndarray, traces: np.ndarray) -> np.ndarray:
        if np.any(markers == 0):
            raise ValueError("a component lies entirely in one jackknife block: its standard error is undefined")
        lhs = 0.5 * (traces + traces.T) / (stats.n_probes * np.outer(markers, markers))
        return np.linalg.solve(lhs, numerator / markers)

    total_counts, total_residual, total_cross = counts.sum(0), residual.sum(0), cross.sum(0)
    if np.any(total_counts == 0):
        raise ValueError(f"component {int(np.flatnonzero(total_counts == 0)[0])} has no markers")
    h2 = solve(total_counts, total_residual, total_cross)
    replicates = np.array([solve(total_counts - counts[j], total_residual - residual[j],
                                 total_cross - cross[j] - cross[j].T + stats.block_products[j])
                           for j in np.flatnonzero(counts.sum(axis=1) > 0)])
    return h2, replicates, total_counts


def fit_pcgc(stats: PCGCStatistics, *, var_t: float) -> PCGCEstimates:
    """h² of one case-control trait by PCGC with several components (V h² = R, module docstring) and
    delete-one-block jackknife SEs over markers (R and V left out together; var_t held fixed)."""
    h2, replicates, counts = pcgc_replicates(stats)
    return pcgc_estimates(h2, jackknife_covariance(replicates), var_t=var_t, n_markers=counts.astype(np.int64))


@dataclass(frozen=True, kw_only=True)
class PCGCPairEstimates:
    """Two diseases' liability-scale h²_k (K, 2), genetic covariance (K,) and rG_k (K,) per component, their
    totals [h²₁, h²₂, C(G)] (3,) and rG = C(G)/√(h²₁h²₂), each with its jackknife SE."""

    h2: np.ndarray
    h2_se: np.ndarray
    covariance: np.ndarray
    covariance_se: np.ndarray
    rg_k: np.ndarray
    rg_k_se: np.ndarray
    totals: np.ndarray
    totals_se: np.ndarray
    rg: float
    rg_se: float


def fit_pcgc_pair(first: PCGCStatistics, second: PCGCStatistics, *, cross: PCGCStatistics) -> PCGCPairEstimates:
    """The genetic correlation of two diseases (S-PCGC's cross equations, module docstring: E[z₁_i z₂_j] =
    u₁_i u₂_j Σ_k ρ_k K_k,ij for i ≠ j), from the statistics of each (on its own samples) and of their
    ``cross`` equations on the samples with both (residual products (w_mᵀPv₁)(w_mᵀPv₂) − Σ_i v₁_i v₂_i
    (Pw_m)_i², traces tr(D₁A_k D₂A_l) less their diagonal, P and A_k those of these samples; u, z of each
    disease from its own risk model); the three left out together by the jackknife."""
    h2_first, replicates_first, _ = pcgc_replicates(first)
    h2_second, replicates_second, _ = pcgc_replicates(second)
    covariance, replicates_cross, _ = pcgc_replicates(cross)

    def derived(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
        """[h²₁, h²₂, C(G), rG, rG_1 … rG_K]"""
        va, vb, cg = a.sum(), b.sum(), c.sum()
        rg = correlation(np.array([cg]), first=np.array([va]), second=np.array([vb]))
        return np.concatenate([[va, vb, cg], rg, correlation(c, first=a, second=b)])

    values = derived(h2_first, h2_second, covariance)
    replicated = np.array([derived(a, b, c) for a, b, c in zip(replicates_first, replicates_second, replicates_cross)])
    se = jackknife_se(replicated)
    return PCGCPairEstimates(h2=np.column_stack([h2_first, h2_second]),
                             h2_se=np.column_stack([jackknife_se(replicates_first), jackknife_se(replicates_second)]),
                             covariance=covariance, covariance_se=jackknife_se(replicates_cross), rg_k=values[4:],
                             rg_k_se=se[4:], totals=values[:3], totals_se=se[:3], rg=float(values[3]),
                             rg_se=float(se[3]))
