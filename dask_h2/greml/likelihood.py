"""Profile log-likelihood of the LMM in the eigenbasis of K (pure numpy).

Model, after rotation by the eigenvectors U of K = U diag(s) Uᵀ:
    y* ~ N(X* β, σ²p · diag(h² s + (1 − h²))),
so V = σ²g K + σ²e I with σ²g = h² σ²p, σ²e = (1 − h²) σ²p and δ = σ²e / σ²g.
β and σ²p are profiled out; every function here is O(n p²) for n samples and p
fixed effects. Constants follow FaST-LMM: the REML likelihood is that of the
error contrasts, including −½ log|XᵀX| so that it is invariant to how X is coded.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np
import scipy.linalg

Method = Literal["REML", "ML"]
LOG_2PI = float(np.log(2.0 * np.pi))
NULL_COMBINATION_TOLERANCE = 1e-8  # a combination of X this small (relative) outside null(K) lies in it
ABSORBED_TOLERANCE = 1e-8  # entries of a column of X this small (relative) are rounding zeros


@dataclass(frozen=True, kw_only=True)
class RotatedProblem:
    """One trait in the eigenbasis: ``s`` (r,) eigenvalues ≥ 0, ``y`` (r,), ``X`` (r, p).

    ``absorbed_s`` (ML only) holds the eigenvalues of coordinates that a column of X
    fits exactly (see :func:`reduce_problem`): they add to log|V| and nothing else.
    """

    s: np.ndarray
    y: np.ndarray
    X: np.ndarray
    method: Method
    n_null_removed: int = 0
    absorbed_s: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        if self.method not in ("REML", "ML"):
            raise ValueError(f"method={self.method!r}: expected 'REML' or 'ML'")

    @property
    def n(self) -> int:
        """Coordinates in the likelihood."""
        return self.y.shape[0] + self.absorbed_s.shape[0]

    @property
    def p(self) -> int:
        return self.X.shape[1]

    @cached_property
    def logdet_xtx(self) -> float:
        """log|XᵀX|: the constant that makes the REML likelihood invariant to how X is coded."""
        r = np.linalg.qr(self.X, mode="r")
        return float(2.0 * np.sum(np.log(np.abs(np.diag(r)))))

    @property
    def dof(self) -> int:
        """Degrees of freedom of σ̂²p: n − p for REML, n for ML."""
        return self.y.shape[0] - self.p if self.method == "REML" else self.n


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    """Profile likelihood at one h²: ``loglik``, ``sigma_p2`` (σ̂²p) and ``beta`` (p,)."""

    h2: float
    loglik: float
    sigma_p2: float
    beta: np.ndarray
    _weights: np.ndarray  # d (n,): diagonal of V / σ²p in the eigenbasis
    _r_factor: np.ndarray  # R (p+1, p+1) of the QR of D^{-1/2} [X y]


def rotate(eigenvectors: np.ndarray, y: np.ndarray, *, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Uᵀy (n,) and UᵀX (n, p) for eigenvectors U (n, n)."""
    return eigenvectors.T @ y, eigenvectors.T @ X


def null_tolerance(s: np.ndarray) -> float:
    """Eigenvalues at or below this are numerical zeros of K."""
    return float(max(np.max(np.abs(s)), 1.0) * s.shape[0] * 64 * np.finfo(np.float64).eps)


def drop_fixed_null_directions(
    s: np.ndarray, y: np.ndarray, *, X: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Remove the directions of null(K) ∩ span(X) from a rotated problem (the ML fix).

    Along such a direction V = σ²e and the GLS residual is exactly zero, so textbook
    ML grows without bound as h² → 1. Returns (s, y, X, k) in n − k coordinates, with
    X reparametrised to its p − k columns that stay identifiable; k = 0 leaves the
    problem unchanged.
    """
    null = s <= null_tolerance(s)
    if not null.any():
        return s, y, X, 0
    _, sv, vt = np.linalg.svd(X[~null], full_matrices=False)
    rank = int(np.sum(sv > NULL_COMBINATION_TOLERANCE * np.linalg.norm(X, 2)))
    k = X.shape[1] - rank
    if k == 0:
        return s, y, X, 0
    kept, lost = vt[:rank].T, vt[rank:].T  # bases of R^p: identifiable and null-only combinations
    basis, _ = np.linalg.qr(X[null] @ lost, mode="complete")  # first k columns span the lost directions
    keep_null = basis[:, k:]
    s_out = np.concatenate([s[~null], np.zeros(keep_null.shape[1])])
    y_out = np.concatenate([y[~null], keep_null.T @ y[null]])
    X_kept = X @ kept
    X_out = np.vstack([X_kept[~null], keep_null.T @ X_kept[null]])
    return s_out, y_out, X_out, k


def drop_absorbed_coordinates(s: np.ndarray, y: np.ndarray, *, X: np.ndarray) -> tuple[np.ndarray, ...]:
    """Remove coordinates that a column of X spans alone (the PCs, which are eigenvectors of K).

    A column equal to a unit vector e_i fits coordinate i exactly: its residual is 0
    whatever h², so dropping row i and that column leaves the GLS fit of the rest
    unchanged. Returns (s, y, X, s_absorbed) with the eigenvalues of the dropped rows.
    """
    magnitude = np.abs(X) > ABSORBED_TOLERANCE * np.linalg.norm(X, axis=0)
    unit_columns = np.flatnonzero(magnitude.sum(axis=0) == 1)
    rows = np.ones(s.shape[0], dtype=bool)
    rows[np.argmax(magnitude[:, unit_columns], axis=0)] = False
    return s[rows], y[rows], np.delete(X[rows], unit_columns, axis=1), s[~rows]


def reduce_problem(s: np.ndarray, y: np.ndarray, *, X: np.ndarray, method: Method) -> RotatedProblem:
    """The smallest equivalent problem for the likelihood of ``method``.

    Coordinates fitted exactly by a column of X drop out of REML altogether (the error
    contrasts do not see them, so V need only be positive definite on the rest) and
    out of ML's residual sum of squares. ML then removes null(K) ∩ span(X), whether a
    column spans such a direction alone (the intercept when K·1 = 0) or in combination.
    """
    tolerance = null_tolerance(s)
    s, y, X, absorbed = drop_absorbed_coordinates(s, y, X=X)
    if method == "REML":
        return RotatedProblem(s=s, y=y, X=X, method=method)
    absorbed_null = absorbed <= tolerance  # a column of X that is itself a null direction of K
    s, y, X, removed = drop_fixed_null_directions(s, y, X=X)
    return RotatedProblem(
        s=s,
        y=y,
        X=X,
        method=method,
        n_null_removed=removed + int(absorbed_null.sum()),
        absorbed_s=absorbed[~absorbed_null],
    )


def evaluate(problem: RotatedProblem, h2: float, *, one_minus_h2: float | None = None) -> Evaluation:
    """Profile log-likelihood at ``h2`` (pass ``one_minus_h2`` to keep precision near 1)."""
    omh2 = 1.0 - h2 if one_minus_h2 is None else one_minus_h2
    d = h2 * problem.s + omh2
    if np.any(d <= 0):
        return Evaluation(
            h2=h2,
            loglik=-np.inf,
            sigma_p2=np.nan,
            beta=np.full(problem.p, np.nan),
            _weights=d,
            _r_factor=np.full((problem.p + 1,) * 2, np.nan),
        )
    w = 1.0 / np.sqrt(d)
    augmented = np.column_stack([problem.X * w[:, None], problem.y * w])
    r = np.linalg.qr(augmented, mode="r")
    p, dof = problem.p, problem.dof
    rss = r[p, p] ** 2
    beta = scipy.linalg.solve_triangular(r[:p, :p], r[:p, p], check_finite=False)
    sigma_p2 = rss / dof
    logdet_d = np.sum(np.log(d)) + np.sum(np.log(h2 * problem.absorbed_s + omh2))
    loglik = -0.5 * (dof * LOG_2PI + logdet_d + dof + dof * np.log(sigma_p2))
    if problem.method == "REML":
        logdet_h = 2.0 * np.sum(np.log(np.abs(np.diag(r)[:p])))
        loglik -= 0.5 * (logdet_h - problem.logdet_xtx)
    return Evaluation(h2=h2, loglik=float(loglik), sigma_p2=float(sigma_p2), beta=beta, _weights=d, _r_factor=r)


def observed_information(problem: RotatedProblem, at: Evaluation) -> np.ndarray:
    """Observed information (2, 2) of (σ²p, h²) with β profiled out, at ``at``.

    Analytic second derivatives in the eigenbasis: with E = ∂D/∂h² = diag(s − 1) and
    P = D⁻¹ − D⁻¹X H⁻¹ XᵀD⁻¹ (H = XᵀD⁻¹X), ∂P/∂h² = −PEP.
    """
    d, s, X = at._weights, problem.s, problem.X
    e = s - 1.0
    sigma = at.sigma_p2
    resid = problem.y - X @ at.beta
    py = resid / d
    f = X / d[:, None]  # D⁻¹X
    r_x = at._r_factor[: problem.p, : problem.p]
    h_inv = scipy.linalg.cho_solve((r_x, False), np.eye(problem.p), check_finite=False)

    def apply_p(v: np.ndarray) -> np.ndarray:
        return v / d - f @ (h_inv @ (f.T @ v))

    a = e * py
    ypepy = float(py @ a)
    ypepepy = float(a @ apply_p(a))
    if problem.method == "REML":
        fef = (f * e[:, None]).T @ f  # FᵀEF
        fe2df = (f * (e**2 / d)[:, None]).T @ f  # FᵀE D⁻¹ E F
        g_fef = h_inv @ fef
        tr_pepe = np.sum((e / d) ** 2) - 2.0 * np.trace(h_inv @ fe2df) + np.trace(g_fef @ g_fef)
    else:
        e_absorbed = problem.absorbed_s - 1.0
        d_absorbed = at.h2 * problem.absorbed_s + (1.0 - at.h2)
        tr_pepe = np.sum((e / d) ** 2) + np.sum((e_absorbed / d_absorbed) ** 2)
    # Q = yᵀPy = dof · σ̂²p at the optimum over σ²p, which simplifies ∂²ℓ/∂(σ²p)².
    d_ss = -0.5 * problem.dof / sigma**2
    d_sh = -0.5 * ypepy / sigma**2
    d_hh = -0.5 * (-tr_pepe + 2.0 * ypepepy / sigma)
    return -np.array([[d_ss, d_sh], [d_sh, d_hh]])
