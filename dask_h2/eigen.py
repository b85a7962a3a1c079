"""Eigendecomposition of the kinship matrix on the driver."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg


@dataclass(frozen=True)
class Eigen:
    """K = vectors · diag(values) · vectorsᵀ; ``values`` (n,) descending, ``vectors`` (n, n)."""

    values: np.ndarray
    vectors: np.ndarray

    def principal_components(self, k: int) -> np.ndarray:
        """The top ``k`` eigenvectors (n, k): the PCs used as fixed effects."""
        return self.vectors[:, :k]


def eigendecompose(kinship: np.ndarray, overwrite: bool = False) -> Eigen:
    """Eigendecomposition of a symmetric (n, n) matrix by LAPACK's divide and conquer.

    Tiny negative eigenvalues from rounding are set to 0 (K is positive semidefinite).
    ``overwrite=True`` lets LAPACK reuse the buffer of ``kinship``.
    """
    values, vectors = scipy.linalg.eigh(kinship, driver="evd", overwrite_a=overwrite, check_finite=False)
    values = np.clip(values[::-1], 0.0, None)
    return Eigen(values, np.ascontiguousarray(vectors[:, ::-1]))
