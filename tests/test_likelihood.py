"""The eigen-basis likelihood and fit against an independent dense computation (Cholesky of V)."""
from __future__ import annotations

import numpy as np
import pytest

import dense_reference as dense
from conftest import centred_kinship
from dask_h2.kinship.eigen import eigendecompose
from dask_h2.greml.univariate import fit_rotated
from dask_h2.greml.likelihood import evaluate, observed_information, reduce_problem, rotate

N, M = 150, 600
H2_POINTS = [0.0, 0.05, 0.3, 0.6, 0.95, 0.999]


@pytest.fixture(scope="module")
def data():
    K = centred_kinship(N, M, seed=3)
    eigen = eigendecompose(K.copy())
    rng = np.random.default_rng(7)
    covariate = rng.normal(size=N)
    X = np.column_stack([np.ones(N), eigen.principal_components(3), covariate])
    chol = np.linalg.cholesky(0.6 * K + 0.4 * np.eye(N))
    y = 2.0 + 0.5 * covariate + chol @ rng.normal(size=N)
    return K, eigen, X, y


def _problem(eigen, y, X, method):
    y_rot, X_rot = rotate(eigen.vectors, y, X=X)
    return reduce_problem(eigen.values, y_rot, X=X_rot, method=method)


@pytest.mark.parametrize("h2", H2_POINTS)
def test_reml_loglik_equals_dense(data, h2):
    K, eigen, X, y = data
    ours = evaluate(_problem(eigen, y, X, "REML"), h2).loglik
    assert ours == pytest.approx(dense.loglik(K, y, X, h2, "REML"), rel=1e-8)


@pytest.mark.parametrize("h2", H2_POINTS)
def test_ml_loglik_equals_dense_without_the_intercept_direction(data, h2):
    K, eigen, X, y = data
    problem = _problem(eigen, y, X, "ML")
    assert problem.n_null_removed == 1 and problem.n == N - 1
    K_ml, y_ml, X_ml = dense.without_intercept_direction(K, y, X)
    assert evaluate(problem, h2).loglik == pytest.approx(dense.loglik(K_ml, y_ml, X_ml, h2, "ML"), rel=1e-8)


@pytest.mark.parametrize("h2", H2_POINTS)
def test_ml_is_textbook_ml_when_k_has_no_null_direction(data, h2):
    K, _, X, y = data
    K_full = K + 0.2 * np.ones((N, N)) / N + 0.05 * np.eye(N)  # K·1 ≠ 0: nothing to remove
    eigen = eigendecompose(K_full.copy())
    problem = _problem(eigen, y, X, "ML")
    assert problem.n_null_removed == 0
    assert evaluate(problem, h2).loglik == pytest.approx(dense.loglik(K_full, y, X, h2, "ML"), rel=1e-8)


def test_textbook_ml_is_unbounded_along_the_intercept(data):
    K, _, X, y = data
    near_one = [dense.loglik(K, y, X, 1.0 - eps, "ML") for eps in (1e-3, 1e-6, 1e-9)]
    assert near_one[0] < near_one[1] < near_one[2]  # grows like −½ log(1 − h²)


def _traits(data):
    K, eigen, X, y = data
    rng = np.random.default_rng(11)
    noise = eigen.vectors[:, N // 2:] @ rng.normal(size=N - N // 2)  # weight on small eigenvalues: h² = 0
    strong = np.linalg.cholesky(0.97 * K + 0.03 * np.eye(N)) @ rng.normal(size=N)
    genetic = eigen.vectors[:, 4:40] @ rng.normal(size=36) * 3 + 0.01 * rng.normal(size=N)  # h² = 1 boundary
    return {"mixed": y, "noise": noise, "strong": strong, "genetic": genetic}


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("trait", ["mixed", "noise", "strong", "genetic"])
def test_fitted_h2_equals_dense(data, method, trait):
    K, eigen, X, _ = data
    y = _traits(data)[trait]
    y_rot, X_rot = rotate(eigen.vectors, y, X=X)
    ours = fit_rotated(trait, s=eigen.values, y=y_rot, X=X_rot, method=method)
    system = dense.without_intercept_direction(K, y, X) if method == "ML" else (K, y, X)
    h2, logl = dense.fit_h2(*system, method)
    assert ours.h2 == pytest.approx(h2, abs=1e-6)
    assert ours.logL == pytest.approx(logl, rel=1e-8)
    assert ours.boundary == (h2 == 0.0 or h2 > 1 - 1e-6)
    assert ours.logL0 == pytest.approx(dense.loglik(*system, 0.0, method), rel=1e-10)
    if trait == "noise":
        assert ours.boundary and ours.h2 == 0.0 and ours.lrt == 0.0 and ours.pval == 0.5
    if trait == "genetic":
        assert ours.boundary and ours.h2 == 1.0 and np.isfinite(ours.logL)


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_observed_information_equals_numeric_hessian(data, method):
    K, eigen, X, y = data
    y_rot, X_rot = rotate(eigen.vectors, y, X=X)
    fit = fit_rotated("y", s=eigen.values, y=y_rot, X=X_rot, method=method)
    problem = _problem(eigen, y, X, method)
    at = evaluate(problem, fit.h2)
    ours = observed_information(problem, at)
    system = dense.without_intercept_direction(K, y, X) if method == "ML" else (K, y, X)

    def negative_loglik(theta):
        return -dense.loglik(*system, theta[1], method, sigma_p2=theta[0])

    theta, step = np.array([at.sigma_p2, fit.h2]), np.array([1e-4, 1e-4])
    hessian = np.empty((2, 2))
    for i in range(2):
        for j in range(2):
            ei, ej = np.eye(2)[i] * step[i], np.eye(2)[j] * step[j]
            hessian[i, j] = (
                negative_loglik(theta + ei + ej)
                - negative_loglik(theta + ei - ej)
                - negative_loglik(theta - ei + ej)
                + negative_loglik(theta - ei - ej)
            ) / (4 * step[i] * step[j])
    np.testing.assert_allclose(ours, hessian, rtol=1e-4)
    assert fit.h2_se == pytest.approx(np.sqrt(np.linalg.inv(hessian)[1, 1]), rel=1e-4)


def test_unconstrained_fit_goes_below_zero_like_a_dense_search(data):
    K, eigen, X, _ = data
    rng = np.random.default_rng(5)
    for _ in range(20):  # find pure-noise traits whose unconstrained optimum is negative
        y = rng.normal(size=N)
        y_rot, X_rot = rotate(eigen.vectors, y, X=X)
        fit = fit_rotated("noise", s=eigen.values, y=y_rot, X=X_rot, method="REML", constrain=False)
        if fit.h2 < -1e-3:
            break
    assert fit.h2 < -1e-3 and not fit.boundary
    grid = np.linspace(fit.h2 - 0.02, min(fit.h2 + 0.02, 0.0), 41)
    values = [dense.loglik(K, y, X, h, "REML") for h in grid]
    assert max(values) <= fit.logL + 1e-9
    assert fit.logL == pytest.approx(dense.loglik(K, y, X, fit.h2, "REML"), rel=1e-10)
