"""Block conjugate gradients for V x = b, V = σ_e I + Σ_k σ_k Q K_k Q, one pass over the genotypes per iteration.

Every column b has its own trait (its missingness pattern's projection Q = D − UUᵀ, D the
pattern's samples, U an orthonormal basis of its fixed effects) and its own variance parameters
θ = (σ_e, σ_1, …, σ_K), K_k = W_k W_kᵀ / M_k; the columns of all traits share each pass. As
BOLT-LMM's ``conjGradSolveVmulti``: plain CG from x = 0, no preconditioner (V's condition number,
(σ_e + σ_g λ_max(K)) / σ_e, is small once the PCs are fixed effects), each column stopped when
‖r‖ / ‖b‖ < ``tolerance``; a column still above it after ``max_iter`` iterations is reported
(:class:`Solution`), never hidden.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dask_h2.mcreml.passes import HeldGenotypes, product_pass


@dataclass(frozen=True, kw_only=True)
class Projections:
    """The missingness patterns: ``masks`` (n, P) bool and orthonormal ``bases`` U_p (n, c_p) (0 outside the
    pattern); :meth:`project` applies Q_p to the columns of each pattern."""

    masks: np.ndarray
    bases: tuple[np.ndarray, ...]

    def project(self, values: np.ndarray, pattern: np.ndarray) -> np.ndarray:
        """Q_p x (n, B) for the columns of ``values`` (n, B), column b in pattern ``pattern[b]``."""
        out = np.empty_like(values, dtype=np.float64)
        for p in np.unique(pattern):
            columns = np.flatnonzero(pattern == p)
            part = np.where(self.masks[:, p, None], values[:, columns], 0.0)
            out[:, columns] = part - self.bases[p] @ (self.bases[p].T @ part)
        return out


@dataclass(frozen=True, kw_only=True)
class Solution:
    """x (n, B), the CG ``iterations`` done and each column's final relative ``residual`` (B,)."""

    x: np.ndarray
    iterations: int
    residual: np.ndarray


def apply_v(genotypes: HeldGenotypes, x: np.ndarray, *, theta: np.ndarray, pattern: np.ndarray,
            projections: Projections) -> np.ndarray:
    """V x (n, B) for x (n, B) in range(Q), column b with parameters ``theta[:, b]`` ((K + 1, B), σ_e first)."""
    weights = theta[1:] / genotypes.counts[:, None]
    out = product_pass(genotypes, x, weights=weights, columns=np.arange(x.shape[1]), split=False)[1][0]
    return theta[0] * x + projections.project(out, pattern)


def block_cg(genotypes: HeldGenotypes, b: np.ndarray, *, theta: np.ndarray, pattern: np.ndarray,
             projections: Projections, tolerance: float, max_iter: int) -> Solution:
    """Solve V x = b (n, B) column by column in one block (module docstring); columns that have converged
    leave the passes."""
    x = np.zeros_like(b, dtype=np.float64)
    r = np.array(b, dtype=np.float64)
    norms = np.sqrt((r * r).sum(0))
    norms[norms == 0] = 1.0
    p = r.copy()
    rr = (r * r).sum(0)
    active = np.sqrt(rr) / norms >= tolerance
    iterations = 0
    while active.any() and iterations < max_iter:
        iterations += 1
        columns = np.flatnonzero(active)
        vp = apply_v(genotypes, p[:, columns], theta=theta[:, columns], pattern=pattern[columns],
                     projections=projections)
        alpha = rr[columns] / (p[:, columns] * vp).sum(0)
        x[:, columns] += alpha * p[:, columns]
        r[:, columns] -= alpha * vp
        new = (r[:, columns] ** 2).sum(0)
        p[:, columns] = r[:, columns] + (new / rr[columns]) * p[:, columns]
        rr[columns] = new
        active[columns] = np.sqrt(new) / norms[columns] >= tolerance
    return Solution(x=x, iterations=iterations, residual=np.sqrt(rr) / norms)
