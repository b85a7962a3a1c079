"""SE and profile-CI calibration, light version of benchmarks/se_calibration.py.

One K (600 samples, 2,000 markers) and 300 phenotypes drawn exactly from the model
y ~ N(Xβ, h² K + (1 − h²) I) per true h²: over them, the mean reported SE must match the
empirical SD of ĥ² (within 15%: the SD itself is known to ±4% here) and the 95% profile
interval must cover the truth in 90–99% of replicates (its Monte-Carlo SE is 1.3%).
About 50 s of CPU: marked slow.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import centred_kinship
from dask_h2.kinship.eigen import eigendecompose
from dask_h2.greml.univariate import fit_traits

pytestmark = pytest.mark.slow  # the second step of .ci/run (pytest -m slow)

N, M, REPLICATES, PCS = 600, 2000, 300, 2


@pytest.fixture(scope="module")
def eigen():
    return eigendecompose(centred_kinship(N, M, seed=31))


@pytest.mark.slow
@pytest.mark.parametrize("h2", [0.2, 0.5, 0.8])
def test_mean_se_matches_sd_and_interval_covers(eigen, h2):
    rng = np.random.default_rng(int(h2 * 1000))
    scale = np.sqrt(h2 * eigen.values + 1.0 - h2)[:, None]
    X = np.column_stack([np.ones(N), eigen.principal_components(PCS)])
    Y = X @ np.array([1.0, 3.0, -2.0])[:, None] + eigen.vectors @ (scale * rng.standard_normal((N, REPLICATES)))
    fits = fit_traits(eigen, Y, names=[f"r{i}" for i in range(REPLICATES)], method="REML", pcs=PCS, constrain=False)
    estimate = np.array([f.h2 for f in fits])
    se = np.array([f.h2_se for f in fits])
    covered = np.mean([f.h2_ci_low <= h2 <= f.h2_ci_high for f in fits])
    sd = estimate.std(ddof=1)
    print(f"\nh2 {h2}: mean {estimate.mean():.4f} SD {sd:.4f} mean SE {np.nanmean(se):.4f} coverage {covered:.3f}")
    assert abs(estimate.mean() - h2) < 3 * sd / np.sqrt(REPLICATES) + 0.01
    assert np.nanmean(se) == pytest.approx(sd, rel=0.15)
    assert 0.90 <= covered <= 0.99
