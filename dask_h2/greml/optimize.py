"""Maximise a profile likelihood over h² by a grid then Brent's method on log δ.

δ = σ²e / σ²g and h² = 1 / (1 + δ), so t = log δ maps (−∞, ∞) onto h² ∈ (1, 0).
The likelihood can be multimodal and can peak on a boundary: a coarse grid over
``|t| ≤ LOG_DELTA_BOUND`` finds the best basin, Brent refines it, and an optimum at
less than ``BOUNDARY_H2`` from h² = 0 (evaluated exactly) or 1 is reported on
that boundary.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.optimize
from scipy.special import expit

LOG_DELTA_BOUND = 23.0  # h² ∈ [1e-10, 1 − 1e-10] on the grid
GRID_POINTS = 81
X_TOLERANCE = 1e-10
BOUNDARY_H2 = 1e-6  # an optimum closer than this to h² = 0 or 1 is reported on that boundary


@dataclass(frozen=True, kw_only=True)
class Optimum:
    """Where the profile likelihood peaks: ``h2`` ∈ [0, 1], ``log_delta`` (±inf on a boundary)."""

    h2: float
    log_delta: float
    loglik: float
    boundary: bool


def h2_pair(log_delta: float) -> tuple[float, float]:
    """(h², 1 − h²) for t = log δ, each computed without cancellation."""
    return float(expit(-log_delta)), float(expit(log_delta))


def maximize_h2(loglik: Callable[[float, float], float], lower: float = 0.0) -> Optimum:
    """Maximise ``loglik(h2, one_minus_h2)`` over h² ∈ [``lower``, 1].

    ``lower`` < 0 allows negative h² (GCTA's --reml-no-constrain): when the optimum
    over [0, 1] is h² = 0, the search goes on over [lower, 0] with Brent on h².
    """

    def negative(t: float) -> float:
        value = loglik(*h2_pair(t))
        return -value if np.isfinite(value) else np.inf

    grid = np.linspace(-LOG_DELTA_BOUND, LOG_DELTA_BOUND, GRID_POINTS)
    values = np.array([negative(t) for t in grid])
    best = int(np.argmin(values))
    bounds = (grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)])
    result = scipy.optimize.minimize_scalar(negative, bounds=bounds, method="bounded", options={"xatol": X_TOLERANCE})
    t, value = (float(result.x), -float(result.fun)) if result.fun <= values[best] else (grid[best], -values[best])
    h2, one_minus_h2 = h2_pair(t)
    if h2 < BOUNDARY_H2 and lower < 0.0:
        return _maximize_negative(loglik, lower)
    if h2 < BOUNDARY_H2:  # the likelihood is flat in log δ there: the optimum is h² = 0 itself
        return Optimum(h2=0.0, log_delta=np.inf, loglik=float(loglik(0.0, 1.0)), boundary=True)
    if one_minus_h2 < BOUNDARY_H2:  # h² → 1: the supremum is approached within 1e-10
        return Optimum(h2=1.0, log_delta=-np.inf, loglik=float(loglik(*h2_pair(-LOG_DELTA_BOUND))), boundary=True)
    return Optimum(h2=h2, log_delta=t, loglik=value, boundary=False)


def _maximize_negative(loglik: Callable[[float, float], float], lower: float) -> Optimum:
    """The optimum over h² ∈ [lower, 0], where log δ is undefined (δ < 0 or infinite)."""
    result = scipy.optimize.minimize_scalar(
        lambda h2: -loglik(h2, 1.0 - h2), bounds=(lower, 0.0), method="bounded", options={"xatol": X_TOLERANCE}
    )
    h2 = float(result.x)
    if -h2 < BOUNDARY_H2:
        return Optimum(h2=0.0, log_delta=np.inf, loglik=float(loglik(0.0, 1.0)), boundary=False)
    return Optimum(h2=h2, log_delta=np.nan, loglik=-float(result.fun), boundary=lower - h2 > -BOUNDARY_H2)
