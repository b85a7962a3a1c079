"""Eigendecomposition of the kinship matrix on the driver."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg

# eigenvalues below −NEGATIVE_TOLERANCE × the largest |eigenvalue| are more than rounding (the
# float32 products of dask-h2's own K give about −3e-7 where M < n)
NEGATIVE_TOLERANCE = 1e-5


@dataclass(frozen=True, kw_only=True)
class Eigen:
    """K = vectors · diag(values) · vectorsᵀ; ``values`` (n,) descending, ``vectors`` (n, n)."""

    values: np.ndarray
    vectors: np.ndarray

    def principal_components(self, k: int) -> np.ndarray:
        """The top ``k`` eigenvectors (n, k): the PCs used as fixed effects."""
        return self.vectors[:, :k]


def eigendecompose(kinship: np.ndarray, *, overwrite: bool = False) -> Eigen:
    """Eigendecomposition of a symmetric (n, n) matrix by LAPACK's divide and conquer.

    Parameters
    ----------
    kinship : numpy.ndarray
        K (n, n), symmetric.
    overwrite : bool
        Let LAPACK use the buffer of ``kinship`` (it no longer holds K afterwards).

    Returns
    -------
    Eigen
        Eigenvalues (n,) descending and eigenvectors (n, n), C-contiguous (the layout they have when
        read back from a store, so that fits from memory and from a store round alike). Negative
        eigenvalues are set to 0 (the model needs K positive semidefinite); a RuntimeWarning names
        them when they exceed rounding (a GRM from elsewhere may not be).

    Examples
    --------
    >>> import numpy as np
    >>> eigendecompose(np.array([[2.0, 1.0], [1.0, 2.0]])).values
    array([3., 1.])
    """
    values, vectors = scipy.linalg.eigh(kinship, driver="evd", overwrite_a=overwrite, check_finite=False)
    warn_if_not_psd(values, what="the GRM", action="they are set to 0")
    return Eigen(values=np.clip(values[::-1], 0.0, None), vectors=np.ascontiguousarray(vectors[:, ::-1]))


def warn_if_not_psd(values: np.ndarray, *, what: str, action: str) -> None:
    """A one-line RuntimeWarning when the ascending eigenvalues (n,) of ``what`` go below 0 by more
    than rounding (``NEGATIVE_TOLERANCE`` of the largest), saying what is done (``action``)."""
    tolerance = NEGATIVE_TOLERANCE * np.abs(values).max(initial=0.0)
    if values.size and values[0] < -tolerance:
        count = np.count_nonzero(values < -tolerance)
        warnings.warn(f"{what} is not positive semidefinite: {count} eigenvalue(s) below 0, the smallest "
                      f"{values[0]:.3g} (largest {values[-1]:.3g}); {action}", RuntimeWarning, stacklevel=3)
