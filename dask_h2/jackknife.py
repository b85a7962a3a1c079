"""The delete-one-group jackknife, shared by the moments path (marker blocks) and the exact path's PCGC
(sample blocks)."""
from __future__ import annotations

import numpy as np


def jackknife_se(replicates: np.ndarray) -> np.ndarray:
    """Delete-one-group jackknife SE (..., q) of each column of ``replicates`` (..., J, q):
    sqrt((J−1)/J Σ_j (θ_j − θ̄)²).

    Examples
    --------
    >>> jackknife_se(np.array([[1.0], [2.0], [3.0]]))
    array([1.15470054])
    """
    n = replicates.shape[-2]
    spread = replicates - replicates.mean(axis=-2, keepdims=True)
    return np.sqrt((n - 1) / n * np.sum(spread**2, axis=-2))
