"""Simulation recovery: over 50 replicates the mean ĥ² is within 2 Monte-Carlo SEs of the truth."""
from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from dask_h2.kinship.eigen import eigendecompose
from dask_h2.greml.univariate import fit_traits
from dask_h2.kinship.grm import kinship
from dask_h2.io.simulate import SimulationDesign, simulate

pytestmark = pytest.mark.slow  # the second step of .ci/run (pytest -m slow)

TRUE_H2 = (0.5, 0.3, 0.1, 0.0)
REPLICATES = 50


def _replicate(seed: int) -> list[float]:
    source = simulate(SimulationDesign(n_samples=1000, n_markers=5000, h2=TRUE_H2, seed=seed))
    dosage = source.read_block(0, source.n_variants)
    traits, names = source.phenotypes()
    K = kinship(da.from_array(dosage, chunks=(1000, -1)))
    # unconstrained REML: the constrained estimator is biased upward near 0 by construction
    fits = fit_traits(
        eigendecompose(K.matrix, overwrite=True), traits, names=names, method="REML", pcs=10, constrain=False
    )
    return [fit.h2 for fit in fits]


@pytest.mark.slow
def test_mean_h2_recovers_the_truth():
    estimates = np.array([_replicate(1000 + r) for r in range(REPLICATES)])
    mean = estimates.mean(axis=0)
    mc_se = estimates.std(axis=0, ddof=1) / np.sqrt(REPLICATES)
    print("\ntrue h2 ", TRUE_H2, "\nmean h2 ", mean.round(4), "\nMC SE   ", mc_se.round(4))
    assert np.all(np.abs(mean - np.array(TRUE_H2)) <= 2 * mc_se)
