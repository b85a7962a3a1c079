"""rG and its SE calibrated: a light version of benchmarks/bivariate_calibration.py.

One K (500 samples, 1,000 markers) and 150 trait pairs drawn exactly from the bivariate model
per true rG (h² = 0.6 and 0.5, rE = 0.2): the mean r̂G must lie within 3 Monte-Carlo SEs of
the truth and the mean reported SE within 15 % of the empirical SD of r̂G (the SD itself is
known to about ±6 % here). Unconstrained fits, so that r̂G is not truncated at ±1.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import centred_kinship
from dask_h2.greml.bivariate import fit_bivariate
from dask_h2.kinship.eigen import eigendecompose

pytestmark = pytest.mark.slow  # the second step of .ci/run (pytest -m slow)

N, M, REPLICATES = 500, 1000, 150
H2, RE = (0.6, 0.5), 0.2


@pytest.fixture(scope="module")
def eigen():
    return eigendecompose(centred_kinship(N, M, seed=61))


@pytest.mark.slow
@pytest.mark.parametrize("rg", [0.0, 0.5])
def test_mean_rg_is_unbiased_and_se_matches_sd(eigen, rg):
    rng = np.random.default_rng(int(100 * rg) + 7)
    cg = rg * np.sqrt(H2[0] * H2[1])
    ce = RE * np.sqrt((1 - H2[0]) * (1 - H2[1]))
    G, E = np.array([[H2[0], cg], [cg, H2[1]]]), np.array([[1 - H2[0], ce], [ce, 1 - H2[1]]])
    blocks = np.linalg.cholesky(eigen.values[:, None, None] * G + E)  # (n, 2, 2): Σ_i = s_i G + E
    X = np.ones((N, 1))
    estimates, ses = [], []
    for _ in range(REPLICATES):
        rotated = np.einsum("iab,ib->ia", blocks, rng.standard_normal((N, 2)))
        Y = eigen.vectors @ rotated + np.array([1.0, -2.0])
        (pair,) = fit_bivariate(eigen, Y, names=["a", "b"], pairs=[(0, 1)], X=X, columns=["intercept"], constrain=False)
        estimates.append(pair.rg)
        ses.append(pair.rg_se)
    estimates, ses = np.array(estimates), np.array(ses)
    sd = estimates.std(ddof=1)
    print(f"\nrG {rg}: mean {estimates.mean():.4f} (MC SE {sd / np.sqrt(REPLICATES):.4f}) SD {sd:.4f} "
          f"mean SE {ses.mean():.4f}")
    assert abs(estimates.mean() - rg) < 3 * sd / np.sqrt(REPLICATES)
    assert ses.mean() == pytest.approx(sd, rel=0.15)
