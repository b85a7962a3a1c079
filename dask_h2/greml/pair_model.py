"""The bivariate REML's likelihood: V of two stacked traits, in the eigenbasis of K or dense.

Components φ = (Vg₁, Vg₂, Cg, Ve₁, Ve₂, Ce) (Ce left out with fewer than ``MIN_COMMON``
samples in common). When both traits are observed on the same n samples, rotating by the
eigenvectors of their K makes V block diagonal with one 2 × 2 block s_i G + E per eigenvalue
s_i, so that every evaluation is O(n p²) (:class:`EigenPairFactor`, the idea of GEMMA's
mvLMM); otherwise V (n₁ + n₂ square) is factored densely (:class:`dask_h2.greml.reml.DenseFactor`).
A :class:`PairModel` wraps either as φ ↦ REML pieces (:mod:`dask_h2.greml.reml`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from dask_h2.greml.likelihood import drop_absorbed_coordinates
from dask_h2.greml.reml import Block, DenseFactor, Pieces, UnitPairs, logdet_gram, reml_pieces

MIN_COMMON = 10  # fewer samples with both traits: no residual covariance, and no eigenbasis path (GCTA's n ≥ 10)
G11, G22, G12, E11, E22, E12 = range(6)


class EigenPairFactor:
    """V of two traits on the same n samples in the eigenbasis of their K (eigenvalues ``s`` (n,)),
    observations interleaved (sample i's traits at 2i and 2i + 1): blocks Σ_i = s_i G + E.

    Raises ``numpy.linalg.LinAlgError`` when some Σ_i is not positive definite.
    """

    def __init__(self, s: np.ndarray, phi: np.ndarray):
        e12 = phi[E12] if phi.shape[0] > E12 else 0.0
        self.s = s
        a, d, b = s * phi[G11] + phi[E11], s * phi[G22] + phi[E22], s * phi[G12] + e12
        det = a * d - b * b
        if not np.all((a > 0) & (det > 0)):
            raise np.linalg.LinAlgError("a 2 x 2 block of V is not positive definite")
        self.logdet = float(np.sum(np.log(det)))
        self.inverse = (d / det, -b / det, a / det)  # Σ_i⁻¹ entries (1,1), (1,2), (2,2)

    PATTERNS = {G11: ((1, 0), (0, 0)), G22: ((0, 0), (0, 1)), G12: ((0, 1), (1, 0)),
                E11: ((1, 0), (0, 0)), E22: ((0, 0), (0, 1)), E12: ((0, 1), (1, 0))}  # D_m,i / its weight

    def solve(self, matrix: np.ndarray) -> np.ndarray:
        first, second = matrix[0::2], matrix[1::2]
        i11, i12, i22 = (v[:, None] for v in self.inverse)
        out = np.empty_like(matrix, dtype=np.float64)
        out[0::2], out[1::2] = i11 * first + i12 * second, i12 * first + i22 * second
        return out

    def apply(self, m: int, matrix: np.ndarray) -> np.ndarray:
        weight = (self.s if m in (G11, G22, G12) else np.ones_like(self.s))[:, None]
        out = np.zeros_like(matrix, dtype=np.float64)
        if m in (G11, E11):
            out[0::2] = weight * matrix[0::2]
        elif m in (G22, E22):
            out[1::2] = weight * matrix[1::2]
        else:
            out[0::2], out[1::2] = weight * matrix[1::2], weight * matrix[0::2]
        return out

    def inverse_trace(self, m: int) -> float:
        weight = self.s if m in (G11, G22, G12) else 1.0
        i11, i12, i22 = self.inverse
        entry = {G11: i11, E11: i11, G22: i22, E22: i22, G12: 2.0 * i12, E12: 2.0 * i12}[m]
        return float(np.sum(weight * entry))

    def inverse_product_trace(self, m: int, n: int) -> float:
        """Σ_i w_m w_n tr(Σ_i⁻¹ P_m Σ_i⁻¹ P_n) for the 2 × 2 patterns P of D_m,i = w_m,i P_m."""
        i11, i12, i22 = self.inverse
        inverse = np.stack([np.stack([i11, i12], -1), np.stack([i12, i22], -1)], -2)  # (n, 2, 2)
        first, second = (inverse @ np.array(self.PATTERNS[k], dtype=np.float64) for k in (m, n))
        weight = (self.s if m in (G11, G22, G12) else 1.0) * (self.s if n in (G11, G22, G12) else 1.0)
        return float(np.sum(weight * np.einsum("iab,iba->i", first, second)))


@dataclass(frozen=True, kw_only=True)
class PairModel:
    """The REML of one pair: ``evaluate(φ)`` (None where V is not positive definite) over
    ``n_components`` (6, or 5 without Ce), with the sizes and starting values."""

    evaluate: Callable[..., Pieces | None]  # (φ, fisher=False): with F, for exact Newton steps
    n_components: int
    n_per_trait: tuple[int, int]
    n_common: int
    path: str
    start: np.ndarray  # φ where V is positive definite


def eigen_pair_model(*, s: np.ndarray, Y: np.ndarray, X: np.ndarray, raw: np.ndarray, raw_X: np.ndarray) -> PairModel:
    """Two traits on the same n samples: eigenvalues ``s`` (n,) of their K, the rotated traits
    Y (n, 2) and fixed effects X (n, p); ``raw``/``raw_X`` unrotated, for the starting values.

    Coordinates that a column of X fits alone (the PCs, and the intercept when K·1 = 0) drop
    out of REML exactly (:func:`dask_h2.greml.likelihood.drop_absorbed_coordinates`), which keeps
    a near-singular E from reaching log|V| through them.
    """
    n = s.shape[0]
    s, Y, X, _ = drop_absorbed_coordinates(s, Y, X=X)
    p = X.shape[1]
    y = Y.ravel()  # interleaved
    stacked = np.zeros((2 * s.shape[0], 2 * p))
    stacked[0::2, :p], stacked[1::2, p:] = X, X
    logdet_xtx = logdet_gram(stacked)

    def evaluate(phi: np.ndarray, fisher: bool = False) -> Pieces | None:
        try:
            return reml_pieces(
                EigenPairFactor(s, phi), y=y, X=stacked, logdet_xtx=logdet_xtx, n_components=6, fisher=fisher
            )
        except np.linalg.LinAlgError:
            return None

    residuals = [_residuals(raw[:, t], raw_X) for t in (0, 1)]
    return PairModel(
        evaluate=remembering(evaluate),
        n_components=6,
        n_per_trait=(n, n),
        n_common=n,
        path="eigen",
        start=_start(residuals, residuals, True),
    )


def dense_pair_model(*, K11: np.ndarray, K22: np.ndarray, K12: np.ndarray, y1: np.ndarray, y2: np.ndarray,
                     X1: np.ndarray, X2: np.ndarray, common: tuple[np.ndarray, np.ndarray]) -> PairModel:
    """Two traits on different samples: K of each trait's samples (n₁, n₁), (n₂, n₂) and between
    them (n₁, n₂), the traits y₁ (n₁,), y₂ (n₂,), fixed effects X₁ (n₁, p), X₂ (n₂, p) and the
    positions of the samples with both traits in each (``common``: two (c,) int arrays)."""
    n1, n2 = y1.shape[0], y2.shape[0]
    total = n1 + n2
    first, second = slice(0, n1), slice(n1, total)
    with_ce = common[0].size >= MIN_COMMON
    components = [
        [Block(rows=first, cols=first, matrix=K11)],
        [Block(rows=second, cols=second, matrix=K22)],
        [Block(rows=first, cols=second, matrix=K12, mirror=True)],
        [UnitPairs(rows=np.arange(n1), cols=np.arange(n1))],
        [UnitPairs(rows=n1 + np.arange(n2), cols=n1 + np.arange(n2))],
    ]
    if with_ce:
        components.append([UnitPairs(rows=common[0], cols=n1 + common[1], mirror=True)])
    y = np.concatenate([y1, y2])
    X = np.zeros((total, X1.shape[1] + X2.shape[1]))
    X[first, : X1.shape[1]], X[second, X1.shape[1]:] = X1, X2
    logdet_xtx = logdet_gram(X)

    def evaluate(phi: np.ndarray, fisher: bool = False) -> Pieces | None:
        try:
            return reml_pieces(
                DenseFactor(components, phi, n=total),
                y=y,
                X=X,
                logdet_xtx=logdet_xtx,
                n_components=len(components),
                fisher=fisher,
            )
        except np.linalg.LinAlgError:
            return None

    r1, r2 = _residuals(y1, X1), _residuals(y2, X2)
    start = _start((r1, r2), (r1[common[0]], r2[common[1]]), with_ce)
    return PairModel(
        evaluate=remembering(evaluate),
        n_components=len(components),
        n_per_trait=(n1, n2),
        n_common=int(common[0].size),
        path="dense",
        start=start,
    )


def remembering(evaluate: Callable[..., Pieces | None]) -> Callable[..., Pieces | None]:
    """``evaluate`` that returns its last result again for the same φ (AI-REML evaluates its start twice:
    once to find a positive definite V, once to begin; on the dense path each is a factorization of V)."""
    last: dict = {}

    def remembered(phi: np.ndarray, fisher: bool = False) -> Pieces | None:
        key = (np.asarray(phi, dtype=np.float64).tobytes(), fisher)
        if key not in last:
            last.clear()
            last[key] = evaluate(phi, fisher)
        return last[key]

    return remembered


def _residuals(y: np.ndarray, X: np.ndarray) -> np.ndarray:
    return y - X @ np.linalg.lstsq(X, y, rcond=None)[0]


def _start(residuals: Sequence[np.ndarray], common: Sequence[np.ndarray], with_ce: bool) -> np.ndarray:
    """Half of each trait's residual variance genetic, half residual; Cg = 0, Ce half the residual covariance."""
    v1, v2 = (float(np.var(r)) for r in residuals)
    start = [v1 / 2, v2 / 2, 0.0, v1 / 2, v2 / 2]
    return np.array(start + ([0.5 * float(np.mean(common[0] * common[1]))] if with_ce else []))
