"""The optimizer of MC-REML (pure numpy/scipy): BOLT-LMM's constrained, trust-region average-information
Newton step, and the SEs from the average information.

Parameters θ = (σ_e, σ_1, …, σ_K) on the scale where ‖Q y‖² = n − c. A step p maximises the
quadratic model q(p) = sᵀp − ½ pᵀ A p (s the Monte Carlo score, A the average information)
subject to θ + p ≥ 1e-9 and ‖diag(A) ∘ p‖ ≤ Δ (BOLT's ``constrainedNR``); q(p) is the predicted
gain of log L. The box-constrained problem is a bounded least-squares one, ‖Lᵀp − L⁻¹s‖² with
A = LLᵀ (:func:`scipy.optimize.lsq_linear`); the trust region adds λ diag(A)² to A, λ found by
bisection (Levenberg–Marquardt).
"""
from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.optimize

LOWER = 1e-9  # every variance parameter stays at or above this (BOLT's bound)
SHRINK, EXPAND = 0.25, 3.5  # trust radius factors after a poor / a very good step (BOLT's)
POOR, GOOD = 1e-4, 0.99  # ratios of actual to predicted gain that shrink / expand the radius (BOLT's)


def _box_step(score: np.ndarray, information: np.ndarray, lower: np.ndarray) -> np.ndarray:
    factor = scipy.linalg.cholesky(information, lower=True)
    target = scipy.linalg.solve_triangular(factor, score, lower=True)
    bounds = (lower, np.full(lower.shape, np.inf))
    return scipy.optimize.lsq_linear(factor.T, target, bounds=bounds, method="bvls", tol=1e-14).x


def newton_step(theta: np.ndarray, *, score: np.ndarray, information: np.ndarray,
                radius: float) -> tuple[np.ndarray, float]:
    """(p (K + 1,), predicted gain q(p)) of the constrained trust-region step from ``theta`` (module docstring).

    Examples
    --------
    >>> p, gain = newton_step(np.array([0.5, 0.5]), score=np.array([1.0, -2.0]), information=np.eye(2), radius=1e9)
    >>> np.round(p, 6).tolist(), round(gain, 6)
    ([1.0, -0.5], 1.375)
    """
    lower = LOWER - theta
    scale = np.diag(information) ** 2
    step = _box_step(score, information, lower)
    if np.linalg.norm(np.sqrt(scale) * step) > radius:
        low, high = 0.0, 1.0
        while np.linalg.norm(np.sqrt(scale) * _box_step(score, information + high * np.diag(scale), lower)) > radius:
            high *= 4.0
        for _ in range(60):
            middle = 0.5 * (low + high)
            inside = np.linalg.norm(np.sqrt(scale) * _box_step(score, information + middle * np.diag(scale),
                                                               lower)) <= radius
            low, high = (low, middle) if inside else (middle, high)
        step = _box_step(score, information + high * np.diag(scale), lower)
    return step, float(score @ step - 0.5 * step @ information @ step)


def new_radius(radius: float, *, ratio: float, step: np.ndarray, information: np.ndarray) -> float:
    """The trust radius after a step with ``ratio`` = actual / predicted gain (BOLT's rule)."""
    size = float(np.linalg.norm(np.diag(information) * step))
    if ratio < POOR:
        return SHRINK * size
    if ratio >= GOOD:
        return max(radius, EXPAND * size)
    return radius


def standard_errors(theta: np.ndarray, information: np.ndarray, *, n_samples_mc: int) -> dict[str, np.ndarray]:
    """SEs of θ (K + 1,), of h²_k = σ_k / Σθ (K,), of their total, of σ_g = Σ_k σ_k and of Vp = Σθ, by the
    delta method on the inverse average information (K + 1, K + 1), each inflated by √(1 + 1/T) for the
    Monte Carlo noise of T = ``n_samples_mc`` simulated traits (Var(ŝ) = (1 + 1/T) × the Fisher information).

    Examples
    --------
    >>> se = standard_errors(np.array([0.5, 0.5]), np.eye(2), n_samples_mc=100)
    >>> round(float(se["h2"][0]), 6), round(float(se["vp"]), 6)
    (0.710634, 1.421267)
    """
    covariance = (1.0 + 1.0 / n_samples_mc) * np.linalg.inv(information)
    vp = theta.sum()
    size = theta.shape[0] - 1
    genetic = np.r_[0.0, np.ones(size)]

    def se(gradient: np.ndarray) -> float:
        return float(np.sqrt(max(gradient @ covariance @ gradient, 0.0)))

    h2 = theta[1:] / vp
    total = genetic @ theta / vp
    return {"theta": np.sqrt(np.maximum(np.diag(covariance), 0.0)),
            "h2": np.array([se((np.eye(size + 1)[k + 1] - h2[k]) / vp) for k in range(size)]),
            "h2_total": np.array(se((genetic - total) / vp)), "sigma_g": np.array(se(genetic)),
            "vp": np.array(se(np.ones(size + 1)))}
