"""The delete-one-group jackknife, shared by the moments path (marker blocks) and the exact path's PCGC
(sample blocks)."""
from __future__ import annotations

import numpy as np


def jackknife_se(replicates: np.ndarray) -> np.ndarray:
    """Delete-one-group jackknife SE of each column of ``replicates`` (J, q): sqrt((J−1)/J Σ (θ_j − θ̄)²)."""
    n = replicates.shape[0]
    return np.sqrt((n - 1) / n * np.sum((replicates - replicates.mean(axis=0)) ** 2, axis=0))
