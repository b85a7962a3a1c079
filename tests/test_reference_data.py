"""Known answers on the team's reference data (../shared/data; skipped when absent)."""
from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pytest

import dense_reference as dense
from conftest import shared_data
from dask_h2.kinship.eigen import eigendecompose
from dask_h2.greml.univariate import fit_traits
from dask_h2.kinship.grm import kinship
from dask_h2.io.tables import align_to_samples


@pytest.fixture(scope="module")
def fastlmm():
    from bed_reader import open_bed

    folder = shared_data("fastlmm_synth")
    bed = open_bed(folder / "fastlmmTest.bed")
    chromosome_1 = np.flatnonzero(bed.chromosome == "1")
    dosage = bed.read(index=np.s_[:, chromosome_1], dtype="int8").T
    dosage[dosage < 0] = -1
    y, _ = align_to_samples(folder / "fastlmmPheno.txt", bed.iid)
    x, _ = align_to_samples(folder / "fastlmmCov.txt", bed.iid)
    K = kinship(da.from_array(dosage, chunks=(128, -1)), scale="empirical")
    return K, y, x


@pytest.mark.parametrize("method, expected", [("REML", 0.14276125), ("ML", 0.14323741)])
def test_fastlmm_synth_published_h2(fastlmm, method, expected):
    K, y, x = fastlmm
    assert K.n_markers_used == 1000
    (fit,) = fit_traits(eigendecompose(K.matrix.copy()), y, names=["y"], method=method, pcs=0, covariates=x)
    assert fit.h2 == pytest.approx(expected, abs=1e-6)
    assert fit.n_null_removed == (1 if method == "ML" else 0)


@pytest.fixture(scope="module")
def seed_pilot():
    folder = shared_data("seed_pilot")
    genotypes = np.loadtxt(folder / "genotype.csv", delimiter=",", dtype=np.int8)
    phenotypes = np.loadtxt(folder / "phenotype.csv", delimiter=",")
    K = kinship(da.from_array(genotypes.T, chunks=(1000, -1)), scale="hwe")
    return K, phenotypes


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_seed_pilot_fits_sit_on_the_h2_0_boundary(seed_pilot, method):
    K, phenotypes = seed_pilot
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fits = fit_traits(
            eigendecompose(K.matrix.copy()), phenotypes, names=["t1", "t2", "t3", "t4"], method=method, pcs=10
        )
    for fit in fits:
        assert fit.h2 == 0.0 and fit.boundary
        assert np.isfinite(fit.logL) and fit.logL == fit.logL0 and fit.lrt == 0.0 and fit.pval == 0.5


def test_seed_pilot_textbook_ml_is_unbounded_as_documented(seed_pilot):
    """The README's numbers for textbook ML over all n components: logL − logL0 at h² = 1 − 1e-9."""
    K, phenotypes = seed_pilot
    eigen = eigendecompose(K.matrix.copy())
    X = np.column_stack([np.ones(100), eigen.principal_components(10)])
    gains = [dense.loglik(K.matrix, y, X, 1 - 1e-9, "ML") - dense.loglik(K.matrix, y, X, 0.0, "ML")
             for y in phenotypes.T]
    np.testing.assert_allclose(gains, [2.3, 1.8, 2.2, 4.5], atol=0.06)
