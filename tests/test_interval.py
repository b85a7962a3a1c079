"""The 95% profile-likelihood interval for h² against an independent dense computation."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize

import dense_reference as dense
from conftest import centred_kinship
from dask_h2.kinship.eigen import eigendecompose
from dask_h2.greml.univariate import fit_rotated
from dask_h2.greml.interval import chi2_threshold, profile_interval
from dask_h2.greml.likelihood import rotate

N, M = 300, 400


def rotated(eigen, y, X) -> dict:
    """y and X rotated into the eigenbasis, as fit_rotated takes them."""
    y_rot, X_rot = rotate(eigen.vectors, y, X=X)
    return {"y": y_rot, "X": X_rot}


@pytest.fixture(scope="module")
def data():
    K = centred_kinship(N, M, seed=21)
    eigen = eigendecompose(K.copy())
    X = np.column_stack([np.ones(N), eigen.principal_components(2)])
    return K, eigen, X


def _trait(K, eigen, kind: str, seed: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "noise":  # weight on the smallest eigenvalues: ĥ² = 0
        return eigen.vectors[:, N // 2:] @ rng.normal(size=N - N // 2)
    if kind == "genetic":  # almost all variance along K: ĥ² = 1
        return eigen.vectors[:, 3:60] @ rng.normal(size=57) * 3 + 0.01 * rng.normal(size=N)
    return np.linalg.cholesky(0.5 * K + 0.5 * np.eye(N)) @ rng.normal(size=N)


def _dense_end(system, method, h2, loglik_max, bound):
    """Where the dense profile drops 3.8415/2 below its maximum between ĥ² and ``bound``."""
    def excess(x):
        return dense.loglik(*system, x, method) - loglik_max + 0.5 * chi2_threshold()
    return bound if excess(bound) >= 0 else scipy.optimize.brentq(excess, h2, bound, xtol=1e-12)


def test_chi2_threshold_is_the_95_percent_quantile():
    assert chi2_threshold() == pytest.approx(3.841458820694124, rel=1e-12)


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_interior_interval_equals_dense_profile_roots(data, method):
    K, eigen, X = data
    y = _trait(K, eigen, "mixed")
    fit = fit_rotated("y", s=eigen.values, **rotated(eigen, y, X), method=method)
    system = dense.without_intercept_direction(K, y, X) if method == "ML" else (K, y, X)
    assert 0 < fit.h2_ci_low < fit.h2 < fit.h2_ci_high < 1
    assert fit.h2_ci_low == pytest.approx(_dense_end(system, method, fit.h2, fit.logL, 0.0), abs=1e-7)
    assert fit.h2_ci_high == pytest.approx(_dense_end(system, method, fit.h2, fit.logL, 1.0 - 1e-9), abs=1e-7)
    for end in (fit.h2_ci_low, fit.h2_ci_high):
        drop = 2 * (fit.logL - dense.loglik(*system, end, method))
        assert drop == pytest.approx(chi2_threshold(), abs=1e-6)


def test_interval_at_the_h2_0_boundary_starts_at_0(data):
    K, eigen, X = data
    y = _trait(K, eigen, "noise")
    fit = fit_rotated("y", s=eigen.values, **rotated(eigen, y, X), method="REML")
    assert fit.h2 == 0.0 and fit.boundary and fit.h2_ci_low == 0.0
    assert fit.h2_ci_high == pytest.approx(_dense_end((K, y, X), "REML", 0.0, fit.logL, 1.0 - 1e-9), abs=1e-7)


def test_interval_at_the_h2_1_boundary_ends_at_1(data):
    K, eigen, X = data
    y = _trait(K, eigen, "genetic")
    fit = fit_rotated("y", s=eigen.values, **rotated(eigen, y, X), method="REML")
    assert fit.h2 == 1.0 and fit.boundary and fit.h2_ci_high == 1.0
    assert fit.h2_ci_low == pytest.approx(_dense_end((K, y, X), "REML", 1.0 - 1e-9, fit.logL, 0.0), abs=1e-6)


def test_unconstrained_interval_extends_below_0(data):
    K, eigen, X = data
    rng = np.random.default_rng(8)
    for _ in range(30):  # a pure-noise trait whose unconstrained optimum is negative
        y = rng.normal(size=N)
        fit = fit_rotated("y", s=eigen.values, **rotated(eigen, y, X), method="REML", constrain=False)
        if fit.h2 < -0.01:
            break
    assert fit.h2_ci_low < fit.h2 < 0 < fit.h2_ci_high
    drop = 2 * (fit.logL - dense.loglik(K, y, X, fit.h2_ci_low, "REML"))
    assert drop == pytest.approx(chi2_threshold(), abs=1e-6)


def test_flat_profile_gives_the_whole_range():
    """A profile that never drops 1.92 below its maximum: the interval is the search range."""
    assert profile_interval(lambda h2: -0.5 * (h2 - 0.3) ** 2, h2=0.3, loglik_max=0.0, lower=0.0) == (0.0, 1.0)
    low, high = profile_interval(lambda h2: -50.0 * (h2 - 0.3) ** 2, h2=0.3, loglik_max=0.0, lower=0.0)
    half_width = np.sqrt(chi2_threshold() / 100.0)
    assert (low, high) == pytest.approx((0.3 - half_width, 0.3 + half_width), abs=1e-9)
