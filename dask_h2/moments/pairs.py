"""Genetic correlation by moments (bivariate Haseman–Elston, as SCORE; pure numpy).

Two traits fitted on the same samples (those where both and every covariate are observed: the
pair's complete samples) with the same fixed effects, Cov(y₁, y₂) = Σ_k σ_g12,k K_k + σ_e12 I,
solve the univariate normal equations' own matrix A (:mod:`dask_h2.moments.equations`) with the
cross right-hand sides:

    Σ_l tr(P K_k P K_l) σ_12,l + tr(P K_k) σ_e12 = y₁ᵀP K_k P y₂ = Σ_{m∈k} (w_mᵀP y₁)(w_mᵀP y₂) / M_k
    Σ_l tr(P K_l) σ_12,l       + (n − c) σ_e12  = y₁ᵀP y₂

— products of the per-marker quantities the pass computes for each trait anyway. rG =
Σ_k σ_12,k / √(V(G)₁ V(G)₂), rE = σ_e12 / √(V(e)₁ V(e)₂) (not clipped: moments are unconstrained).

SEs: the delete-one-block jackknife of every quantity (the three systems left out together), plus
the variance of the traits' scales, which the jackknife holds fixed (as the univariate rule): v_t =
2σ_tᵀAσ_t/Q_t², v_12 = 2σ_12ᵀAσ_12/(Q₁Q₂) with Q_t = y_tᵀP y_t; a variance of trait t gets v_t ·
value², a covariance (v₁ + v₂ + 2v_12)/4 · value²; h², rG and rE are scale-free.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dask_h2.jackknife import jackknife_se
from dask_h2.moments.equations import Solution


@dataclass(frozen=True, kw_only=True)
class PairEstimates:
    """A pair's estimates, each as (value, SE): ``vg`` (K, 3) per component [V(G)₁, V(G)₂, C(G)], ``rg_k``
    (K,) per component; and the totals in ``totals`` {name: (value, SE)} with the names of GCTA's
    bivariate .hsq (``V(G)_tr1`` … ``rG``, and ``rE``)."""

    vg: np.ndarray
    vg_se: np.ndarray
    rg_k: np.ndarray
    rg_k_se: np.ndarray
    totals: dict[str, tuple[float, float]]


TOTALS = ("V(G)_tr1", "V(G)_tr2", "C(G)_tr12", "V(e)_tr1", "V(e)_tr2", "C(e)_tr12", "Vp_tr1", "Vp_tr2",
          "V(G)/Vp_tr1", "V(G)/Vp_tr2", "rG", "rE")


def correlation(covariance: np.ndarray, *, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """covariance / √(first · second), NaN unless both variances are positive."""
    positive = (first > 0) & (second > 0)
    return np.where(positive, covariance / np.sqrt(np.where(positive, first * second, 1.0)), np.nan)


def _derived(first: np.ndarray, second: np.ndarray, cross: np.ndarray) -> np.ndarray:
    """[V(G)₁, V(G)₂, C(G)] per component (3K), then :data:`TOTALS` (12,), then rG per component (K,), of
    σ (..., K + 1) of each trait and of their covariances: (..., 4K + 12)."""
    vg1, vg2, cg = first[..., :-1].sum(-1), second[..., :-1].sum(-1), cross[..., :-1].sum(-1)
    ve1, ve2, ce = first[..., -1], second[..., -1], cross[..., -1]
    vp1, vp2 = vg1 + ve1, vg2 + ve2
    totals = np.stack([vg1, vg2, cg, ve1, ve2, ce, vp1, vp2, vg1 / vp1, vg2 / vp2,
                       correlation(cg, first=vg1, second=vg2), correlation(ce, first=ve1, second=ve2)], axis=-1)
    per_component = np.stack([first[..., :-1], second[..., :-1], cross[..., :-1]], axis=-1)
    per_component = per_component.reshape(per_component.shape[:-2] + (-1,))
    rg_k = correlation(cross[..., :-1], first=first[..., :-1], second=second[..., :-1])
    return np.concatenate([per_component, totals, rg_k], axis=-1)


def fit_pairs(first: Solution, second: Solution, *, cross: Solution) -> list[PairEstimates]:
    """The bivariate moments fits of P pairs of traits on one group of samples, from the :class:`Solution`
    of the P first traits, of the P second traits and of their P ``cross`` statistics (residual products
    (w_mᵀPy₁)(w_mᵀPy₂) and yy = y₁ᵀPy₂), pair p being fit p of each."""
    sigma1, sigma2, sigma12 = first.sigma2, second.sigma2, cross.sigma2  # (P, K + 1)
    size = sigma1.shape[1] - 1
    values = _derived(sigma1, sigma2, sigma12)
    with np.errstate(invalid="ignore", divide="ignore"):
        jackknife = jackknife_se(_derived(first.replicates, second.replicates, cross.replicates))
    A = first.system.lhs

    def spread(left: np.ndarray, right: np.ndarray) -> np.ndarray:
        return 2.0 * np.einsum("pi,ij,pj->p", left, A, right)

    v1 = np.maximum(spread(sigma1, sigma1), 0.0) / first.yy**2
    v2 = np.maximum(spread(sigma2, sigma2), 0.0) / second.yy**2
    v12 = spread(sigma12, sigma12) / (first.yy * second.yy)
    vc = np.maximum((v1 + v2 + 2.0 * v12) / 4.0, 0.0)
    scales = np.column_stack([v1, v2, vc])  # of [V(G)₁, V(G)₂, C(G)] per component, then of TOTALS, rG_k: 0
    scale_of = np.hstack([np.tile(scales, size), scales, scales, scales[:, :2], np.zeros((len(v1), 4 + size))])
    se = np.sqrt(jackknife**2 + scale_of * values**2)
    per, totals = 3 * size, 3 * size + len(TOTALS)
    return [PairEstimates(vg=values[p, :per].reshape(size, 3), vg_se=se[p, :per].reshape(size, 3),
                          rg_k=values[p, totals:], rg_k_se=se[p, totals:],
                          totals={name: (float(values[p, per + i]), float(se[p, per + i]))
                                  for i, name in enumerate(TOTALS)})
            for p in range(values.shape[0])]
