"""The eigendecomposition: descending order and non-PSD GRMs."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg

from conftest import centred_kinship

from dask_h2.kinship.eigen import eigendecompose


def test_descending_eigenpairs_rebuild_k():
    K = centred_kinship(120, 400, seed=3)
    eigen = eigendecompose(np.asfortranarray(K), overwrite=True)
    assert np.all(np.diff(eigen.values) <= 0) and eigen.values[-1] == 0.0
    np.testing.assert_allclose((eigen.vectors * eigen.values) @ eigen.vectors.T, K, atol=1e-12)
    values, vectors = scipy.linalg.eigh(K, driver="evd")
    np.testing.assert_array_equal(eigen.vectors, vectors[:, ::-1])
    assert eigen.vectors.flags.c_contiguous


def test_centred_k_has_only_rounding_below_zero_and_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        eigen = eigendecompose(centred_kinship(80, 300, seed=4))
    assert eigen.values.min() == 0.0


def test_negative_eigenvalues_beyond_rounding_are_named_and_set_to_zero():
    K = centred_kinship(60, 300, seed=5) - 0.5 * np.eye(60)
    smallest = np.linalg.eigvalsh(K)[0]
    with pytest.warns(RuntimeWarning, match=rf"not positive semidefinite: \d+ eigenvalue\(s\) below 0, "
                                            rf"the smallest {smallest:.3g}"):
        eigen = eigendecompose(K)
    assert eigen.values.min() == 0.0
