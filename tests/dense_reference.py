"""An independent dense LMM likelihood for the tests: Cholesky of V, no eigendecomposition."""
from __future__ import annotations

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
