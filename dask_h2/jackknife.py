"""The delete-one-group jackknife, shared by the moments path (marker blocks) and the exact path's PCGC
(sample blocks)."""
from __future__ import annotations

import numpy as np


def jackknife_covariance(replicates: np.ndarray) -> np.ndarray:
    """Delete-one-group jackknife covariance (..., q, q) of the columns of ``replicates`` (..., J, q):
    (J−1)/J Σ_j (θ_j − θ̄)(θ_j − θ̄)ᵀ.

    Examples
    --------
    >>> jackknife_covariance(np.array([[1.0, 2.0], [2.0, 2.0], [3.0, 5.0]]))
    array([[1.33333333, 2.        ],
           [2.        , 4.        ]])
    """
    n = replicates.shape[-2]
    spread = replicates - replicates.mean(axis=-2, keepdims=True)
    return (n - 1) / n * np.einsum("...jp,...jq->...pq", spread, spread)


def jackknife_se(replicates: np.ndarray) -> np.ndarray:
    """Delete-one-group jackknife SE (..., q) of each column of ``replicates`` (..., J, q): the square root of
    :func:`jackknife_covariance`'s diagonal.

    Examples
    --------
    >>> jackknife_se(np.array([[1.0], [2.0], [3.0]]))
    array([1.15470054])
    """
    return np.sqrt(np.diagonal(jackknife_covariance(replicates), axis1=-2, axis2=-1))
