"""Fit h² for every trait from one eigendecomposition of K (pure numpy, no I/O)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import scipy.stats

from .eigen import Eigen, eigendecompose
from .errors import InputError
from .likelihood import Method, RotatedProblem, evaluate, observed_information, reduce_problem, rotate
from .optimize import LOG_DELTA_BOUND, h2_pair, maximize_h2


@dataclass(frozen=True)
class TraitFit:
    """Variance components of one trait. Variances are in the trait's units squared."""

    name: str
    method: str
    h2: float
    h2_se: float
    sigma_g2: float
    sigma_g2_se: float
    sigma_e2: float
    sigma_e2_se: float
    vp: float
    vp_se: float
    delta: float  # σ²e/σ²g: inf at h² = 0, 0 at h² = 1
    logL: float
    logL0: float  # at h² = 0
    lrt: float
    pval: float  # ½ χ²₁ survival of the LRT (boundary null, as GCTA)
    n: int
    boundary: bool
    beta: list[float] = field(default_factory=list)  # GLS estimate at ĥ², in the order of the fixed effects
    n_null_removed: int = 0  # directions of null(K) ∩ span(X) removed (ML only)


def fixed_effects(eigen: Eigen, pcs: int, covariates: np.ndarray | None = None) -> np.ndarray:
    """X (n, 1 + pcs + c): intercept, top ``pcs`` PCs of K, then the covariates (n, c)."""
    n = eigen.values.shape[0]
    if not 0 <= pcs < n:
        raise InputError(f"--pcs {pcs}: must be between 0 and {n - 1} for {n} samples")
    columns = [np.ones((n, 1)), eigen.principal_components(pcs)]
    if covariates is not None:
        columns.append(np.asarray(covariates, dtype=np.float64).reshape(n, -1))
    return np.hstack(columns)


def _check_full_rank(X: np.ndarray, what: str) -> None:
    rank = np.linalg.matrix_rank(X)
    if rank < X.shape[1]:
        raise InputError(f"{what}: fixed effects are rank deficient (rank {rank} < {X.shape[1]} columns)")


def fit_rotated(name: str, s: np.ndarray, y: np.ndarray, X: np.ndarray, method: Method,
                constrain: bool = True) -> TraitFit:
    """Maximise the profile likelihood of one rotated trait: ``s`` (n,), ``y`` (n,), ``X`` (n, p).

    ``constrain=False`` lets h² go below 0 (as long as V stays positive definite), which
    makes the estimator unbiased at h² = 0 (GCTA's --reml-no-constrain).
    """
    full = RotatedProblem(s, y, X, method)
    problem = reduce_problem(s, y, X, method)
    optimum = maximize_h2(lambda h2, one_minus_h2: evaluate(problem, h2, one_minus_h2).loglik,
                          lower=0.0 if constrain else _lowest_h2(problem.s))
    h2, one_minus_h2 = h2_pair(-LOG_DELTA_BOUND) if optimum.h2 == 1.0 else (optimum.h2, 1.0 - optimum.h2)
    at = evaluate(problem, h2, one_minus_h2)
    logl0 = evaluate(problem, 0.0, 1.0).loglik
    sigma_p2 = at.sigma_p2
    covariance = _inverse_or_nan(observed_information(problem, at))
    jacobian = np.array([[h2, sigma_p2], [one_minus_h2, -sigma_p2], [1.0, 0.0], [0.0, 1.0]])
    se = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", jacobian, covariance, jacobian), 0.0, None))
    lrt = max(2.0 * (optimum.loglik - logl0), 0.0)
    return TraitFit(
        name=name,
        method=method,
        h2=optimum.h2,
        h2_se=float(se[3]),
        sigma_g2=optimum.h2 * sigma_p2,
        sigma_g2_se=float(se[0]),
        sigma_e2=(1.0 - optimum.h2) * sigma_p2,
        sigma_e2_se=float(se[1]),
        vp=sigma_p2,
        vp_se=float(se[2]),
        delta=float(np.exp(optimum.log_delta)) if not np.isnan(optimum.log_delta) else (1.0 - h2) / h2,
        logL=optimum.loglik,
        logL0=logl0,
        lrt=lrt,
        pval=float(0.5 * scipy.stats.chi2.sf(lrt, 1)),
        n=full.n,
        boundary=optimum.boundary,
        beta=evaluate(full, h2, one_minus_h2).beta.tolist(),
        n_null_removed=problem.n_null_removed,
    )


def _lowest_h2(s: np.ndarray) -> float:
    """Smallest h² < 0 keeping every h² s_i + 1 − h² > 0 (bounded at −10)."""
    largest = float(np.max(s))
    return max(-1.0 / (largest - 1.0), -10.0) * (1.0 - 1e-9) if largest > 1.0 else -10.0


def _inverse_or_nan(information: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(information)) or np.linalg.eigvalsh(information)[0] <= 0:
        return np.full_like(information, np.nan)
    return np.linalg.inv(information)


def fit_traits(
    eigen: Eigen,
    traits: np.ndarray,
    names: Sequence[str],
    method: Method = "REML",
    pcs: int = 10,
    covariates: np.ndarray | None = None,
    kinship_subset: Callable[[np.ndarray], np.ndarray] | None = None,
    constrain: bool = True,
) -> list[TraitFit]:
    """Fit every column of ``traits`` (n, k; NaN = missing) from one eigendecomposition.

    Traits with missing values are fitted on their complete cases: ``kinship_subset(index)``
    returns K[index][:, index] and that submatrix is decomposed once per missingness
    pattern; the PCs stay those of the full-sample K (GCTA's convention).
    """
    traits = np.asarray(traits, dtype=np.float64).reshape(eigen.values.shape[0], -1)
    X = fixed_effects(eigen, pcs, covariates)
    if covariates is not None and np.isnan(X).any():
        raise InputError("covariates: missing values are not supported here; drop those samples first")
    fits: dict[int, TraitFit] = {}
    patterns: dict[bytes, list[int]] = {}
    for j in range(traits.shape[1]):
        patterns.setdefault(np.isnan(traits[:, j]).tobytes(), []).append(j)
    for key, columns in patterns.items():
        observed = ~np.frombuffer(key, dtype=bool)
        if observed.sum() <= X.shape[1] + 1:
            raise InputError(f"trait {names[columns[0]]}: only {observed.sum()} non-missing values for {X.shape[1]} fixed effects")
        if observed.all():
            sub = eigen
        elif kinship_subset is None:
            raise InputError(f"trait {names[columns[0]]}: has missing values but no kinship matrix to subset")
        else:
            sub = eigendecompose(kinship_subset(np.flatnonzero(observed)), overwrite=True)
        X_obs = X[observed]
        _check_full_rank(X_obs, f"trait {names[columns[0]]}")
        Y_rot, X_rot = rotate(sub.vectors, traits[observed][:, columns], X_obs)
        for i, j in enumerate(columns):
            fits[j] = fit_rotated(str(names[j]), sub.values, Y_rot[:, i], X_rot, method, constrain)
    return [fits[j] for j in range(traits.shape[1])]
