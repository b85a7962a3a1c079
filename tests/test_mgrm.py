"""Several GRMs (V = Σ σ²_k K_k + σ²_e I) against an independent dense computation and scipy's optimizers."""
from __future__ import annotations

import numpy as np
import pytest

import dense_reference as dense
from conftest import centred_kinship
from dask_h2.greml.aireml import identity_map, maximize
from dask_h2.kinship.eigen import eigendecompose
from dask_h2.greml.univariate import fit_traits
from dask_h2.greml.components import fit_trait, fit_components
from dask_h2.greml.reml import Block, DenseFactor, identity, logdet_gram, reml_pieces

N = 160
PHI_POINTS = [(0.3, 0.2, 0.5), (1.0, 0.0, 1.0), (0.05, 0.9, 0.3), (0.0, 0.0, 2.0), (-0.1, 0.4, 0.8)]


@pytest.fixture(scope="module")
def data():
    Ks = [centred_kinship(N, 300, seed=41), centred_kinship(N, 500, seed=42)]
    rng = np.random.default_rng(5)
    X = np.column_stack([np.ones(N), rng.normal(size=N)])
    V = 0.4 * Ks[0] + 0.25 * Ks[1] + 0.6 * np.eye(N)
    y = X @ np.array([1.0, 0.5]) + np.linalg.cholesky(V) @ rng.standard_normal(N)
    return Ks, X, y


def _pieces(Ks, X, y, phi, derivatives=True):
    components = [[Block(rows=slice(None), cols=slice(None), matrix=K)] for K in Ks] + [identity(N)]
    return reml_pieces(
        DenseFactor(components, np.asarray(phi), n=N),
        y=y,
        X=X,
        logdet_xtx=logdet_gram(X),
        n_components=len(Ks) + 1,
        derivatives=derivatives,
    )


def _dense_loglik(Ks, X, y, phi):
    V = sum(p * K for p, K in zip(phi, Ks)) + phi[-1] * np.eye(N)
    try:
        return dense.reml_loglik_v(V, y, X)
    except np.linalg.LinAlgError:
        return -np.inf


@pytest.mark.parametrize("phi", PHI_POINTS)
def test_loglik_equals_dense_cholesky(data, phi):
    Ks, X, y = data
    assert _pieces(Ks, X, y, phi).loglik == pytest.approx(_dense_loglik(Ks, X, y, phi), rel=1e-8)


@pytest.mark.parametrize("phi", PHI_POINTS[:3])
def test_score_is_the_gradient_of_the_dense_likelihood(data, phi):
    Ks, X, y = data
    step = 1e-6
    numeric = [(_dense_loglik(Ks, X, y, np.add(phi, step * e)) - _dense_loglik(Ks, X, y, np.subtract(phi, step * e)))
               / (2 * step) for e in np.eye(3)]
    assert _pieces(Ks, X, y, phi).score == pytest.approx(numeric, rel=1e-5, abs=1e-4)


def test_ai_is_the_average_of_observed_and_expected_information(data):
    """AI = ½ yᵀPV_mPV_nPy, computed here from P itself."""
    Ks, X, y = data
    phi = (0.3, 0.2, 0.5)
    V = phi[0] * Ks[0] + phi[1] * Ks[1] + phi[2] * np.eye(N)
    Vi = np.linalg.inv(V)
    P = Vi - Vi @ X @ np.linalg.solve(X.T @ Vi @ X, X.T @ Vi)
    mats = [Ks[0], Ks[1], np.eye(N)]
    expected = np.array([[0.5 * y @ P @ a @ P @ b @ P @ y for b in mats] for a in mats])
    assert _pieces(Ks, X, y, phi).ai == pytest.approx(expected, rel=1e-8)


def test_fit_equals_a_general_purpose_optimizer(data):
    Ks, X, y = data
    fit = fit_trait(Ks, y, X=X, name="y", component_names=["a", "b"], n_markers=[300, 500])
    reference = dense.maximize_dense(lambda phi: _dense_loglik(Ks, X, y, phi), np.array([0.3, 0.3, 0.3]))
    ours = np.array([c.sigma2 for c in fit.components] + [fit.sigma_e2])
    print(f"\nAI-REML {ours}, scipy {reference}")
    assert fit.converged and not fit.boundary
    assert ours == pytest.approx(reference, rel=1e-5)
    assert fit.logL == pytest.approx(_dense_loglik(Ks, X, y, reference), rel=1e-10)
    assert fit.h2 == pytest.approx(ours[:2].sum() / ours.sum(), rel=1e-12)


def test_a_component_held_at_zero_is_the_bounded_optimum(data):
    Ks, X, _ = data
    rng = np.random.default_rng(8)
    y = X @ np.array([1.0, 0.5]) + np.linalg.cholesky(0.6 * Ks[1] + 0.5 * np.eye(N)) @ rng.standard_normal(N)
    fit = fit_trait(Ks, y, X=X, name="y", component_names=["a", "b"], n_markers=[300, 500])
    free = fit_trait(Ks, y, X=X, name="y", component_names=["a", "b"], n_markers=[300, 500], constrain=False)
    assert fit.boundary and fit.components[0].sigma2 == 0.0 and free.components[0].sigma2 < 0.0
    reference = dense.maximize_dense(lambda phi: _dense_loglik(Ks, X, y, phi), np.array([0.3, 0.3, 0.3]),
                                     bounds=[(0.0, None), (0.0, None), (1e-6, None)])
    ours = np.array([c.sigma2 for c in fit.components] + [fit.sigma_e2])
    assert ours == pytest.approx(reference, rel=1e-5, abs=1e-7)
    unconstrained = dense.maximize_dense(lambda phi: _dense_loglik(Ks, X, y, phi), np.array([0.3, 0.3, 0.3]))
    assert [c.sigma2 for c in free.components] + [free.sigma_e2] == pytest.approx(unconstrained, rel=1e-5)


def test_one_grm_equals_the_eigenbasis_fit(data):
    Ks, X, y = data
    (brent,) = fit_traits(eigendecompose(Ks[0].copy()), y, names=["y"], method="REML", pcs=0, covariates=X[:, 1:])
    ai = fit_trait(Ks[:1], y, X=X, name="y", component_names=["G"], n_markers=[300])
    assert ai.h2 == pytest.approx(brent.h2, abs=1e-7) and ai.logL == pytest.approx(brent.logL, rel=1e-10)
    assert ai.logL0 == pytest.approx(brent.logL0, rel=1e-12) and ai.lrt == pytest.approx(brent.lrt, abs=1e-6)
    assert ai.vp == pytest.approx(brent.vp, rel=1e-6)
    assert ai.h2_se == pytest.approx(brent.h2_se, rel=0.05)  # AI vs observed information: close, not equal


def test_missing_values_fit_the_complete_cases(data):
    Ks, X, y = data
    y_nan = y.copy()
    y_nan[:9] = np.nan
    (fit,) = fit_components(
        Ks,
        y_nan[:, None],
        names=["y"],
        X=X,
        columns=["intercept", "x"],
        component_names=["a", "b"],
        n_markers=[300, 500],
    )
    sub = fit_trait([K[9:, 9:] for K in Ks], y[9:], X=X[9:], name="y", component_names=["a", "b"], n_markers=[300, 500])
    assert fit.n == N - 9 and fit.logL == pytest.approx(sub.logL, rel=1e-12)


def test_iteration_limit_gives_the_last_estimates_flagged(data):
    Ks, X, y = data
    with pytest.warns(RuntimeWarning, match="trait y: AI-REML did not converge in 1 iterations"):
        fit = fit_trait(Ks, y, X=X, name="y", component_names=["a", "b"], n_markers=[300, 500], max_iter=1)
    assert not fit.converged and np.isfinite(fit.h2)


def test_maximize_refuses_a_start_where_v_is_not_positive_definite(data):
    with pytest.raises(ValueError, match="not positive definite"):
        maximize(lambda phi: None, mapping=identity_map(np.zeros(2)), theta0=np.ones(2))


@pytest.mark.slow
def test_heritability_in_the_rare_bin_is_found_there():
    """Light version of benchmarks/partitioned_simulation.py: one set of K_k by MAF bin (240 samples),
    60 traits drawn exactly from V = 0.6 K_rare + 0.4 I, unconstrained fits: each bin's mean ĥ²
    within 3 Monte-Carlo SEs of its truth (0.6, 0, 0)."""
    import dask.array as da

    from dask_h2.kinship.grm import partitioned_kinship
    from dask_h2.kinship.partition import parse_partition

    n, m, replicates = 240, 900, 60
    rng = np.random.default_rng(17)
    frequency = rng.uniform([0.02, 0.08, 0.25], [0.045, 0.17, 0.5], size=(m // 3, 3)).ravel()
    dosage = rng.binomial(2, frequency[:, None], size=(m, n)).astype(np.int8)
    partition = parse_partition("maf:0.01,0.05,0.2,0.5", np.array([f"v{j}" for j in range(m)], dtype=object))
    parts = partitioned_kinship(da.from_array(dosage, chunks=(300, -1)), partition)
    chol = np.linalg.cholesky(0.6 * parts.matrices[0] + 0.4 * np.eye(n))
    Y = 1.0 + chol @ rng.standard_normal((n, replicates))
    fits = fit_components(
        parts.matrices,
        Y,
        names=[f"r{i}" for i in range(replicates)],
        X=np.ones((n, 1)),
        columns=["intercept"],
        component_names=parts.part_names,
        n_markers=parts.part_markers,
        constrain=False,
    )
    estimates = np.array([[c.h2 for c in fit.components] for fit in fits])
    mc = estimates.std(axis=0, ddof=1) / np.sqrt(replicates)
    print(f"\nmean h2 by bin {estimates.mean(axis=0)}, MC SE {mc}")
    assert np.all(np.abs(estimates.mean(axis=0) - [0.6, 0.0, 0.0]) < 3 * mc)
    assert all(fit.converged for fit in fits)
