"""Top eigenvectors of K from a randomized sketch Y = K Ω (pure numpy): the PCs of the moments path.

K = WWᵀ/M is never formed: a pass over the genotypes gives Y = K Ω for a thin Ω (n, q) with
orthonormal columns (:func:`dask_h2.kinship.pcs.sketch_pass`), and the Nyström approximation
K ≈ Y (ΩᵀY)⁻¹ Yᵀ, eigendecomposed stably with a small shift (Tropp, Yurtsever, Udell and
Cevher 2017, "Fixed-rank approximation of a positive-semidefinite matrix from streaming
data", algorithm 3), gives its top eigenpairs. Each further pass (a power iteration,
Ω ← orth(Y)) sharpens them by another factor of the eigenvalue gap.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

OVERSAMPLING = 10  # sketch columns beyond the PCs asked for


def sketch_width(n_pcs: int, n_samples: int) -> int:
    """Columns q of Ω for ``n_pcs`` PCs: k + 10, at most n."""
    return min(n_pcs + OVERSAMPLING, n_samples)


def orthonormal(matrix: np.ndarray) -> np.ndarray:
    """An orthonormal basis (n, q) of the columns of ``matrix`` (n, q) (thin QR)."""
    return np.linalg.qr(matrix)[0]


def gaussian_start(n_samples: int, width: int, *, seed: int) -> np.ndarray:
    """Ω (n, q): orthonormalized standard normal columns from ``seed`` (a stream of its own)."""
    rng = np.random.default_rng([seed, 2])
    return orthonormal(rng.standard_normal((n_samples, width)))


def nystrom_eigen(omega: np.ndarray, sketch: np.ndarray, *, n_pcs: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``n_pcs`` eigenvalues (k,) descending and eigenvectors (n, k) of the Nyström
    approximation of K from Ω (n, q) orthonormal and Y = K Ω (n, q)."""
    shift = np.sqrt(sketch.shape[0]) * np.spacing(np.linalg.norm(sketch, 2))
    shifted = sketch + shift * omega
    core = omega.T @ shifted
    factor = scipy.linalg.cholesky(0.5 * (core + core.T), lower=False)
    basis = scipy.linalg.solve_triangular(factor, shifted.T, trans="T", lower=False).T  # Y_ν C⁻¹
    vectors, singular, _ = np.linalg.svd(basis, full_matrices=False)
    values = np.maximum(singular**2 - shift, 0.0)
    return values[:n_pcs], vectors[:, :n_pcs]
