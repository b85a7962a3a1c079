"""An independent dense LMM likelihood for the tests: Cholesky of V, no eigendecomposition."""
from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
import scipy.optimize


def loglik(K: np.ndarray, y: np.ndarray, X: np.ndarray, h2: float, method: str, sigma_p2: float | None = None) -> float:
    """log L at h² with β (and σ²p unless given) at their optimum; V = σ²p (h² K + (1 − h²) I)."""
    n, p = X.shape
    A = h2 * K + (1.0 - h2) * np.eye(n)
    L = scipy.linalg.cholesky(A, lower=True)
    logdet_a = 2.0 * np.sum(np.log(np.diag(L)))
    Xw = scipy.linalg.solve_triangular(L, X, lower=True)
    yw = scipy.linalg.solve_triangular(L, y, lower=True)
    beta = np.linalg.solve(Xw.T @ Xw, Xw.T @ yw)
    rss = float(np.sum((yw - Xw @ beta) ** 2))
    dof = n - p if method == "REML" else n
    sigma = rss / dof if sigma_p2 is None else sigma_p2
    value = -0.5 * (dof * np.log(2 * np.pi) + logdet_a + dof * np.log(sigma) + rss / sigma)
    if method == "REML":
        value -= 0.5 * (np.linalg.slogdet(Xw.T @ Xw)[1] - np.linalg.slogdet(X.T @ X)[1])
    return float(value)


def without_intercept_direction(K: np.ndarray, y: np.ndarray, X: np.ndarray):
    """Project onto the complement of 1 (K·1 = 0, X[:, 0] = 1): the well-defined ML problem."""
    n = K.shape[0]
    B = scipy.linalg.null_space(np.ones((1, n)))  # (n, n − 1), orthonormal, Bᵀ1 = 0
    return B.T @ K @ B, B.T @ y, B.T @ X[:, 1:]


def fit_h2(K: np.ndarray, y: np.ndarray, X: np.ndarray, method: str) -> tuple[float, float]:
    """(ĥ², log L) maximising over h² ∈ [0, 1 − 1e-9] directly (bounded Brent on h²)."""
    grid = np.linspace(0.0, 1.0 - 1e-9, 201)
    values = [loglik(K, y, X, h, method) for h in grid]
    best = int(np.argmax(values))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]
    result = scipy.optimize.minimize_scalar(lambda h: -loglik(K, y, X, h, method), bounds=(lo, hi),
                                            method="bounded", options={"xatol": 1e-11})
    if values[best] >= -result.fun:
        return float(grid[best]), float(values[best])
    return float(result.x), float(-result.fun)


def reml_loglik_v(V: np.ndarray, y: np.ndarray, X: np.ndarray) -> float:
    """REML log L for a given covariance V (N, N), β at its GLS optimum, FaST-LMM's constants:
    −½[(N − p) log 2π + log|V| + log|XᵀV⁻¹X| − log|XᵀX| + rᵀV⁻¹r], r = y − Xβ̂."""
    n, p = X.shape
    L = scipy.linalg.cholesky(V, lower=True)
    Xw = scipy.linalg.solve_triangular(L, X, lower=True)
    yw = scipy.linalg.solve_triangular(L, y, lower=True)
    beta = np.linalg.solve(Xw.T @ Xw, Xw.T @ yw)
    rss = float(np.sum((yw - Xw @ beta) ** 2))
    return float(-0.5 * ((n - p) * np.log(2 * np.pi) + 2.0 * np.sum(np.log(np.diag(L)))
                         + np.linalg.slogdet(Xw.T @ Xw)[1] - np.linalg.slogdet(X.T @ X)[1] + rss))


def maximize_dense(loglik, start: np.ndarray, bounds=None) -> np.ndarray:
    """The maximiser of ``loglik`` (a function of a parameter vector that returns -inf where V is
    not positive definite) by scipy's general-purpose L-BFGS-B (finite-difference gradients) from
    ``start``, restarted once from where it stops; tolerances far below 1e-5."""
    def negative(x):
        value = loglik(x)
        return -value if np.isfinite(value) else 1e10

    best = np.asarray(start, dtype=np.float64)
    with warnings.catch_warnings():  # finite differences across the edge of positive definiteness
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(2):
            best = scipy.optimize.minimize(negative, best, method="L-BFGS-B", bounds=bounds,
                                           options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 10000}).x
    return best
