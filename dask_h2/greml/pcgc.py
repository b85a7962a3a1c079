"""PCGC from a GRM (the exact path's PCGC, for studies whose n × n kinship fits in memory).

With the kinship K_k (n, n) of each component at hand the traces are exact: on a disease's samples,
with the risk model of :func:`dask_h2.liability.case_probabilities` (u_i, z_i, v = u∘z, d = u²), the
fixed effects X (n, c), P = I − Q Qᵀ (Q an orthonormal basis of X) and A_k = P K_k P,

    R_k  = Σ_{i≠j} v_i v_j A_k,ij          V_kl = Σ_{i≠j} d_i d_j A_k,ij A_l,ij          V h² = R,

the moments path's equations (:mod:`dask_h2.moments.pcgc`) with its probes replaced by the sums
themselves: given K = W Wᵀ/M of the same genotypes, thresholds and covariates, both give the same h².

SE: a GRM carries no markers, so the moments path's delete-one-block jackknife over markers is not
available; the sampling unit of a study is the individual, and the estimator is a ratio of sums over
pairs of individuals, so the SE is the delete-one-block jackknife over samples: J blocks (sample i in
block i mod J, so that a file sorted by case status or by cohort gives every block a share of each), R
and V recomputed without the pairs that touch block b, the risk model, P and var_t held at the whole
sample's (as the marker jackknife holds them). Each replicate costs no pass over K: with
t = A'(w ∘ [1, E]) for the block indicators E (n, J) and A' = A with a zero diagonal, the pairs that
touch block b sum to 2 Σ_{i∈b} w_i t_i,0 − Σ_{i∈b} w_i t_i,b.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dask_h2.errors import InputError, ParameterError
from dask_h2.greml.sources import file_traits, gcta_kinship
from dask_h2.greml.univariate import fixed_effects
from dask_h2.kinship.eigen import Eigen, eigendecompose
from dask_h2.liability import (RISK_MODEL, CaseProbabilities, PCGCEstimates, case_probabilities, disease_fit,
                               disease_traits, pcgc_estimates)
from dask_h2.results import FitReport
from dask_h2.traits import check_complete_cases

ROWS = 1024  # rows of A_k formed at a time: K_k's n × n is the only n × n array held


def pcgc_of_kinships(kinships: np.ndarray, y: np.ndarray, *, X: np.ndarray, prevalence: float, n_blocks: int,
                     n_markers: np.ndarray | None = None) -> tuple[PCGCEstimates, CaseProbabilities]:
    """PCGC h²_k of a 0/1 trait ``y`` (n,) on the liability scale with one component per kinship of
    ``kinships`` (K, n, n), fixed effects ``X`` (n, c; its first column the intercept) and population
    ``prevalence``; SEs by the delete-one-block jackknife over ``n_blocks`` J blocks of samples (module
    docstring). ``n_markers`` (K,) of each kinship, for the report (default 0). Returns the estimates and
    the risk model. Raises ValueError unless 2 ≤ J ≤ n.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> W = rng.standard_normal((200, 50))
    >>> y = (rng.random(50) < 0.5).astype(float)
    >>> estimates, risk = pcgc_of_kinships((W.T @ W / 200)[None], y, X=np.ones((50, 1)), prevalence=0.1,
    ...                                    n_blocks=20)
    >>> estimates.h2.shape, risk.u.shape
    ((1,), (50,))
    """
    n, size = y.shape[0], kinships.shape[0]
    if not 2 <= n_blocks <= n:
        raise ValueError(f"{n_blocks} jackknife blocks: between 2 and the {n} samples are needed")
    risk = case_probabilities(y, prevalence=prevalence, X=X)
    v, d = risk.u * risk.z, risk.u**2
    indicators = np.zeros((n, n_blocks))
    indicators[np.arange(n), np.arange(n) % n_blocks] = 1.0
    Q = np.linalg.qr(X)[0]
    KQ = [K @ Q for K in kinships]
    QKQ = [Q.T @ b for b in KQ]
    numerator, numerator_out = np.zeros(size), np.zeros((n_blocks, size))
    denominator, denominator_out = np.zeros((size, size)), np.zeros((n_blocks, size, size))
    for start in range(0, n, ROWS):
        rows = np.arange(start, min(start + ROWS, n))
        A = [_projected_rows(kinships[k], rows, Q=Q, KQ=KQ[k], QKQ=QKQ[k]) for k in range(size)]
        for k in range(size):
            total, out = _pair_sums(A[k], v, rows=rows, indicators=indicators)
            numerator[k] += total
            numerator_out[:, k] += out
            for m in range(k + 1):
                total, out = _pair_sums(A[k] * A[m], d, rows=rows, indicators=indicators)
                denominator[k, m] += total
                denominator_out[:, k, m] += out
    lower = np.tril_indices(size, -1)
    denominator.T[lower] = denominator[lower]
    denominator_out.transpose(0, 2, 1)[:, lower[0], lower[1]] = denominator_out[:, lower[0], lower[1]]
    h2 = np.linalg.solve(denominator, numerator)
    replicates = np.linalg.solve(denominator - denominator_out, (numerator - numerator_out)[..., None])[..., 0]
    counts = np.zeros(size, dtype=np.int64) if n_markers is None else np.asarray(n_markers, dtype=np.int64)
    return pcgc_estimates(h2, replicates, var_t=risk.var_t, n_markers=counts), risk


def _projected_rows(K: np.ndarray, rows: np.ndarray, *, Q: np.ndarray, KQ: np.ndarray, QKQ: np.ndarray) -> np.ndarray:
    """Rows ``rows`` (r,) of P K P (r, n), P = I − Q Qᵀ, with the diagonal entries set to 0 (the pairs i ≠ j),
    from K Q (n, c) and Qᵀ K Q (c, c)."""
    out = K[rows] - Q[rows] @ KQ.T - KQ[rows] @ Q.T + Q[rows] @ QKQ @ Q.T
    out[np.arange(rows.size), rows] = 0.0
    return out


def _pair_sums(A: np.ndarray, w: np.ndarray, *, rows: np.ndarray, indicators: np.ndarray) -> tuple[float, np.ndarray]:
    """(Σ_{i∈rows, j} w_i w_j A_ij, and per block b the part of it over pairs with i or j in b, counted as the
    whole sum over all rows would count it) for rows ``rows`` (r,) of a symmetric A (r, n) with a zero
    diagonal, weights ``w`` (n,) and block ``indicators`` (n, J)."""
    t = A @ (w[:, None] * np.hstack([np.ones((w.size, 1)), indicators]))  # (r, 1 + J)
    own = w[rows]
    total = float(own @ t[:, 0])
    touching = 2.0 * ((own * t[:, 0]) @ indicators[rows]) - np.sum(own[:, None] * t[:, 1:] * indicators[rows], axis=0)
    return total, touching


def gcta_pcgc(prefix: str | Path, *, pheno: str | Path, prevalence: str | float | Sequence[float | None],
              pcs: int = 10, covar: str | Path | None = None, qcovar: str | Path | None = None,
              grm_cutoff: float | None = None, n_blocks: int = 100) -> FitReport:
    """PCGC h² on the liability scale of every case-control trait of ``pheno`` (FID IID y1 y2 …, matched by
    IID) with a GCTA GRM (``PREFIX.grm.bin/.grm.N.bin/.grm.id``): each trait on its samples with every
    covariate, fixed effects the intercept, the top ``pcs`` eigenvectors of K and the covariates (GCTA's
    ``covar``/``qcovar`` files), SEs by the jackknife over ``n_blocks`` blocks of samples
    (:func:`pcgc_of_kinships`); ``grm_cutoff`` as :func:`dask_h2.greml.sources.gcta_problem`."""
    K, iid, description = gcta_kinship(prefix, grm_cutoff=grm_cutoff)
    traits = file_traits(pheno, iid, covar=covar, qcovar=qcovar)
    covariates, names = traits.covariates, traits.names
    values, prevalences = disease_traits(traits.values, names, prevalence=prevalence, covariates=covariates.values)
    n = K.shape[0]
    eigen = eigendecompose(K.copy(), overwrite=True) if pcs else Eigen(values=np.zeros(n), vectors=np.empty((n, 0)))
    X, columns = fixed_effects(eigen, pcs, covariates=covariates.values, covariate_names=covariates.names)
    markers = None if description.n_markers_used is None else np.array([description.n_markers_used])
    fits = []
    for j, name in enumerate(names):
        observed = ~np.isnan(values[:, j]) & ~np.isnan(X).any(axis=1)
        what = check_complete_cases(observed, name, X=X, columns=columns)
        if not 2 <= n_blocks <= observed.sum():
            raise ParameterError(f"{{n_blocks}}: {n_blocks} jackknife blocks of samples, more than the "
                                 f"{int(observed.sum())} samples of trait {name}", n_blocks=n_blocks)
        try:
            estimates, risk = pcgc_of_kinships(K[np.ix_(observed, observed)][None], values[observed, j],
                                               X=X[observed], prevalence=prevalences[j], n_blocks=n_blocks,
                                               n_markers=markers)
        except (ValueError, np.linalg.LinAlgError) as exc:
            raise InputError(f"{what}: {exc}") from None
        fits.append(disease_fit(str(name), estimates, risk=risk, prevalence=prevalences[j], n_fixed=X.shape[1],
                                component_names=(Path(prefix).name,)))
    return FitReport(traits=fits, n_samples=n, n_markers_used=description.n_markers_used,
                     n_markers_dropped=description.n_markers_dropped, scale=description.scale, pcs=pcs, method="PCGC",
                     extra={**description.extra, "fixed_effects": columns, "risk_model": RISK_MODEL,
                            "jackknife_blocks": n_blocks, "jackknife": JACKKNIFE})


JACKKNIFE = "delete-one-block over samples (sample i of a trait's samples in block i mod J)"
