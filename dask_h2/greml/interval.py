"""Profile-likelihood confidence interval for h² (pure numerics).

The 95% interval is the connected set of h² around ĥ² with
2 (log L(ĥ²) − log L(h²)) ≤ χ²₁(0.95) = 3.8415, where log L is the profile likelihood
(β and σ²p at their optimum for each h²). Each end is found by scanning from ĥ²
towards the bound of the search range for the first point below the threshold and
then solving for the crossing by Brent's method (``scipy.optimize.brentq``); when the
profile stays above the threshold all the way, the end is the bound itself. Unlike a
Wald interval ĥ² ± 1.96 SE, it is exact at a boundary estimate and never leaves the
parameter range.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.optimize
import scipy.special

LEVEL = 0.95
SCAN_POINTS = 64  # per side, evenly spaced from ĥ² to the bound
X_TOLERANCE = 1e-10


def chi2_threshold(level: float = LEVEL) -> float:
    """χ²₁ quantile at ``level``: 3.8415 for 95%."""
    return float(2.0 * scipy.special.gammaincinv(0.5, level))  # scipy.stats.chi2.ppf(level, 1)


def profile_interval(loglik: Callable[[float], float], *, h2: float, loglik_max: float, lower: float,
                     upper: float = 1.0, level: float = LEVEL) -> tuple[float, float]:
    """(low, high): the ``level`` profile-likelihood interval for h² within [``lower``, ``upper``].

    ``loglik(h2)`` is the profile log-likelihood, finite on the whole range; ``h2`` the
    estimate and ``loglik_max`` its log-likelihood.
    """
    target = loglik_max - 0.5 * chi2_threshold(level)
    return _end(lambda x: loglik(x) - target, h2, lower), _end(lambda x: loglik(x) - target, h2, upper)


def _end(excess: Callable[[float], float], h2: float, bound: float) -> float:
    """The first crossing of ``excess`` = 0 going from ``h2`` to ``bound``, or ``bound``."""
    inside = h2
    for point in np.linspace(h2, bound, SCAN_POINTS + 1)[1:]:
        if excess(point) < 0.0:
            return float(scipy.optimize.brentq(excess, inside, point, xtol=X_TOLERANCE))
        inside = point
    return float(bound)
