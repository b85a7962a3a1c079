"""Missing phenotypes and covariates: complete-case fits equal the dense reference; the
eigendecomposition of each missingness pattern is cached in the store."""
from __future__ import annotations

import numpy as np
import pytest
import zarr

import dense_reference as dense
from conftest import centred_kinship
from dask_h2.io.convert import simulate_to
import dask_h2.kinship.groups
from dask_h2 import api
from dask_h2.kinship.eigen import eigendecompose
from dask_h2.greml.univariate import dense_subset_eigen, fit_traits
from dask_h2.io.simulate import SimulationDesign
from dask_h2.store import GRM_GROUP, SUBSETS_GROUP

N, M, PCS = 200, 600, 3


@pytest.fixture(scope="module")
def data():
    K = centred_kinship(N, M, seed=12)
    rng = np.random.default_rng(2)
    y = np.linalg.cholesky(0.5 * K + 0.5 * np.eye(N)) @ rng.normal(size=N) + 1.0
    missing = rng.choice(N, N // 10, replace=False)
    return K, eigendecompose(K.copy()), y, missing


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_trait_with_10_percent_nan_equals_dense_complete_case_fit(data, method):
    K, eigen, y, missing = data
    y_nan = y.copy()
    y_nan[missing] = np.nan
    (fit,) = fit_traits(eigen, y_nan, names=["y"], method=method, pcs=PCS, subset_eigen=dense_subset_eigen(K))
    observed = ~np.isnan(y_nan)
    # GCTA's convention: PCs of the full-sample K, subset to the phenotyped rows
    X = np.column_stack([np.ones(N), eigen.principal_components(PCS)])[observed]
    K_obs = K[np.ix_(observed, observed)]
    h2, logl = dense.fit_h2(K_obs, y[observed], X, method)
    assert fit.n == N - N // 10 and fit.n_null_removed == 0  # K_obs·1 ≠ 0: nothing to remove
    assert fit.h2 == pytest.approx(h2, abs=1e-6)
    assert fit.logL == pytest.approx(logl, rel=1e-8)
    assert fit.logL0 == pytest.approx(dense.loglik(K_obs, y[observed], X, 0.0, method), rel=1e-10)


def test_missing_covariate_drops_the_sample_like_a_missing_phenotype(data):
    K, eigen, y, missing = data
    x = np.random.default_rng(5).normal(size=N)
    x[missing] = np.nan
    (with_nan_covariate,) = fit_traits(eigen, y, names=["y"], method="REML", pcs=PCS, covariates=x[:, None],
                                       subset_eigen=dense_subset_eigen(K))
    y_nan = y.copy()
    y_nan[missing] = np.nan
    (with_nan_trait,) = fit_traits(
        eigen,
        y_nan,
        names=["y"],
        method="REML",
        pcs=PCS,
        covariates=np.nan_to_num(x)[:, None],
        subset_eigen=dense_subset_eigen(K),
    )
    assert with_nan_covariate.n == N - N // 10
    assert with_nan_covariate.h2 == pytest.approx(with_nan_trait.h2, abs=1e-12)
    assert with_nan_covariate.logL == pytest.approx(with_nan_trait.logL, rel=1e-12)


@pytest.fixture
def store(tmp_path):
    store = simulate_to(
        tmp_path / "missing.zarr",
        SimulationDesign(n_samples=200, n_markers=900, h2=(0.6, 0.3, 0.0), seed=5),
        progress=False,
    )
    root = zarr.open_group(store, mode="r+")
    traits = root["traits"][:]
    traits[::10, 0] = np.nan
    traits[::10, 1] = np.nan  # same pattern as trait 1: one eigendecomposition for both
    root["traits"][:] = traits
    return store


def test_pattern_eigendecomposition_is_cached_in_the_store(store, monkeypatch):
    first = api.fit(store, method="REML", pcs=5, progress=False)
    assert [t.n for t in first.traits] == [180, 180, 200]
    subsets = zarr.open_group(store, mode="r")[f"{GRM_GROUP}/{SUBSETS_GROUP}"]
    (key,) = list(subsets.group_keys())
    cached = subsets[key]
    assert cached.attrs["complete"]
    np.testing.assert_array_equal(cached["index"][:], np.flatnonzero(np.arange(200) % 10 != 0))
    assert cached["eigenvectors"].shape == (180, 180)

    def refuse(*args, **kwargs):
        raise AssertionError("the cached eigendecomposition should have been used")

    monkeypatch.setattr(dask_h2.kinship.groups, "eigendecompose", refuse)
    second = api.fit(store, method="REML", pcs=5, progress=False)
    assert [t.h2 for t in second.traits] == [t.h2 for t in first.traits]


def test_recomputing_the_grm_discards_the_cached_patterns(store):
    api.fit(store, method="REML", progress=False)
    api.grm(store, recompute=True, progress=False)
    assert SUBSETS_GROUP not in zarr.open_group(store, mode="r")[GRM_GROUP]


def test_store_fit_with_missing_values_equals_the_in_memory_fit(store):
    report = api.fit(store, method="REML", pcs=5, progress=False)
    result = api.grm(store, progress=False)
    K = result.kinship[:]
    traits = zarr.open_group(store, mode="r")["traits"][:]
    fits = fit_traits(eigendecompose(K.copy()), traits, names=["a", "b", "c"], method="REML", pcs=5,
                      subset_eigen=dense_subset_eigen(K))
    np.testing.assert_allclose([t.h2 for t in report.traits], [t.h2 for t in fits], atol=1e-9)

