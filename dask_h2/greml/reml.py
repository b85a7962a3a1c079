"""REML log-likelihood, its score and average information for V = Σ_m φ_m V_m (pure numpy).

A model is N observations y (N,) with fixed effects X (N, p) and covariance
V = Σ_m φ_m V_m, linear in the components φ (M,). For a :class:`Factor` of V at φ
(log|V|, V⁻¹ applied to a matrix, tr(V⁻¹V_m) and V_m applied to a matrix), with
P = V⁻¹ − V⁻¹X (XᵀV⁻¹X)⁻¹ XᵀV⁻¹:

    log L = −½ [(N − p) log 2π + log|V| + log|XᵀV⁻¹X| − log|XᵀX| + yᵀPy]
    score_m = ½ [yᵀP V_m P y − tr(P V_m)]
    AI_mn = ½ yᵀP V_m P V_n P y   (GCTA's average information)
    F_mn = ½ tr(P V_m P V_n)      (expected information; the observed one is 2 AI − F)

The constants are FaST-LMM's (dask_h2.greml.likelihood): log L is that of the error contrasts,
invariant to how X is coded. :class:`DenseFactor` holds V as a dense matrix built from
:class:`Block` and :class:`UnitPairs` terms (several GRMs; the bivariate model on
different samples); :mod:`dask_h2.greml.bivariate` has an O(N) factor in the eigenbasis of K.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_limits

LOG_2PI = float(np.log(2.0 * np.pi))
SMALL_DENSE = 1000  # observations below which BLAS runs on one thread (see blas_threads_for)


class Factor(Protocol):
    """V at one φ, in a form that gives what the REML pieces need."""

    logdet: float

    def solve(self, matrix: np.ndarray) -> np.ndarray:
        """V⁻¹ M for M (N, k)."""

    def apply(self, m: int, matrix: np.ndarray) -> np.ndarray:
        """V_m M for M (N, k)."""

    def inverse_trace(self, m: int) -> float:
        """tr(V⁻¹ V_m)."""

    def inverse_product_trace(self, m: int, n: int) -> float:
        """tr(V⁻¹ V_m V⁻¹ V_n)."""


@dataclass(frozen=True, kw_only=True)
class Pieces:
    """REML at one φ: ``loglik``, ``score`` (M,), ``ai`` (M, M), the GLS ``beta`` (p,) and, when
    asked for, the expected information ``fisher`` (M, M)."""

    loglik: float
    score: np.ndarray
    ai: np.ndarray
    beta: np.ndarray
    fisher: np.ndarray | None = None

    def information(self) -> np.ndarray:
        """The observed information −∂²log L/∂φ² = 2 AI − F when F is known, else the AI."""
        return self.ai if self.fisher is None else 2.0 * self.ai - self.fisher


def logdet_gram(X: np.ndarray) -> float:
    """log|XᵀX| of X (N, p) of full column rank."""
    r = np.linalg.qr(X, mode="r")
    return float(2.0 * np.sum(np.log(np.abs(np.diag(r)))))


def reml_pieces(factor: Factor, *, y: np.ndarray, X: np.ndarray, logdet_xtx: float, n_components: int,
                derivatives: bool = True, fisher: bool = False) -> Pieces:
    """log L, score and AI at the φ of ``factor`` for y (N,) and X (N, p); ``logdet_xtx`` = log|XᵀX|.

    ``derivatives=False`` computes log L and β only (score and AI are then empty); ``fisher``
    adds the expected information F, so that the observed one is known.
    """
    n, p = X.shape
    vinv_x = factor.solve(X)
    gram = X.T @ vinv_x
    cho = scipy.linalg.cho_factor(gram, lower=True, check_finite=False)
    vinv_y = factor.solve(y[:, None])[:, 0]
    beta = scipy.linalg.cho_solve(cho, X.T @ vinv_y, check_finite=False)
    py = vinv_y - vinv_x @ beta
    logdet_gram_v = 2.0 * float(np.sum(np.log(np.diag(cho[0]))))
    loglik = -0.5 * ((n - p) * LOG_2PI + factor.logdet + logdet_gram_v - logdet_xtx + float(y @ py))
    if not derivatives:
        return Pieces(loglik=loglik, score=np.zeros(0), ai=np.zeros((0, 0)), beta=beta)
    vpy = np.column_stack([factor.apply(m, py[:, None])[:, 0] for m in range(n_components)])  # V_m Py (N, M)
    h_inv = scipy.linalg.cho_solve(cho, np.eye(p), check_finite=False)
    trace_p = np.array([factor.inverse_trace(m) - np.sum(h_inv * (vinv_x.T @ factor.apply(m, vinv_x)))
                        for m in range(n_components)])
    score = 0.5 * (py @ vpy - trace_p)
    p_vpy = factor.solve(vpy) - vinv_x @ scipy.linalg.cho_solve(cho, vinv_x.T @ vpy, check_finite=False)
    ai = 0.5 * vpy.T @ p_vpy
    return Pieces(loglik=loglik, score=score, ai=0.5 * (ai + ai.T), beta=beta,
                  fisher=_fisher(factor, vinv_x, h_inv, n_components) if fisher else None)


def _fisher(factor: Factor, vinv_x: np.ndarray, h_inv: np.ndarray, n_components: int) -> np.ndarray:
    """F_mn = ½ tr(P V_m P V_n) with P = V⁻¹ − A H⁻¹ Aᵀ, A = V⁻¹X:
    tr(V⁻¹V_mV⁻¹V_n) − 2 tr(H⁻¹ (V_mA)ᵀ V⁻¹ V_nA) + tr(H⁻¹ AᵀV_mA H⁻¹ AᵀV_nA)."""
    applied = [factor.apply(m, vinv_x) for m in range(n_components)]  # V_m A (N, p)
    solved = [factor.solve(w) for w in applied]  # V⁻¹ V_m A
    small = [h_inv @ (vinv_x.T @ w) for w in applied]  # H⁻¹ AᵀV_mA (p, p)
    fisher = np.empty((n_components, n_components))
    for m in range(n_components):
        for n in range(m, n_components):
            value = (factor.inverse_product_trace(m, n) - 2.0 * np.sum(h_inv * (applied[m].T @ solved[n]))
                     + np.sum(small[m] * small[n].T))
            fisher[m, n] = fisher[n, m] = 0.5 * value
    return fisher


@dataclass(frozen=True, kw_only=True)
class Block:
    """A dense block B (r, c) of a component at rows ``rows`` and columns ``cols`` (slices), plus
    Bᵀ at the mirrored place when ``mirror`` (a block off the diagonal of a symmetric V_m)."""

    rows: slice
    cols: slice
    matrix: np.ndarray
    mirror: bool = False


@dataclass(frozen=True, kw_only=True)
class UnitPairs:
    """Entries equal to 1 at (``rows[i]``, ``cols[i]``) (int arrays, no repeated pair), mirrored
    when ``mirror``: the identity, or the residual covariance of the samples two traits share."""

    rows: np.ndarray
    cols: np.ndarray
    mirror: bool = False


Term = Block | UnitPairs


class DenseFactor:
    """V = Σ φ_m V_m (N, N) assembled from each component's terms, its Cholesky factor and V⁻¹.

    Raises ``numpy.linalg.LinAlgError`` when V is not positive definite.
    """

    def __init__(self, components: Sequence[Sequence[Term]], phi: np.ndarray, *, n: int):
        self.components = components
        v = np.zeros((n, n))
        for weight, terms in zip(phi, components):
            for term in terms:
                _add_term(v, term, float(weight))
        chol = scipy.linalg.cholesky(v, lower=True, overwrite_a=True, check_finite=False)
        self.logdet = 2.0 * float(np.sum(np.log(np.diag(chol))))
        inverse, info = scipy.linalg.lapack.dpotri(chol, lower=1, overwrite_c=1)
        if info != 0:
            raise np.linalg.LinAlgError("V is singular")
        self.inverse = np.tril(inverse) + np.tril(inverse, -1).T
        self._products: dict[int, np.ndarray] = {}

    def solve(self, matrix: np.ndarray) -> np.ndarray:
        return self.inverse @ matrix

    def apply(self, m: int, matrix: np.ndarray) -> np.ndarray:
        out = np.zeros_like(matrix, dtype=np.float64)
        for term in self.components[m]:
            if isinstance(term, Block):
                out[term.rows] += term.matrix @ matrix[term.cols]
                if term.mirror:
                    out[term.cols] += term.matrix.T @ matrix[term.rows]
            else:
                out[term.rows] += matrix[term.cols]
                if term.mirror:
                    out[term.cols] += matrix[term.rows]
        return out

    def inverse_product_trace(self, m: int, n: int) -> float:
        return float(np.sum(self._times_inverse(m) * self._times_inverse(n).T))

    def _times_inverse(self, m: int) -> np.ndarray:
        """V_m V⁻¹ (N, N), kept for the other pairs."""
        if m not in self._products:
            self._products[m] = self.apply(m, self.inverse)
        return self._products[m]

    def inverse_trace(self, m: int) -> float:
        total = 0.0
        for term in self.components[m]:
            if isinstance(term, Block):
                value = float(np.sum(self.inverse[term.rows, term.cols] * term.matrix))
            else:
                value = float(np.sum(self.inverse[term.rows, term.cols]))
            total += 2.0 * value if term.mirror else value
        return total


def _add_term(v: np.ndarray, term: Term, weight: float) -> None:
    """V += weight · (the term), in place."""
    if isinstance(term, Block):
        v[term.rows, term.cols] += weight * term.matrix
        if term.mirror:
            v[term.cols, term.rows] += weight * term.matrix.T
    else:
        v[term.rows, term.cols] += weight
        if term.mirror:
            v[term.cols, term.rows] += weight


def blas_threads_for(n: int) -> contextlib.AbstractContextManager:
    """One BLAS thread for a dense REML of fewer than ``SMALL_DENSE`` observations: threads gain
    little at that size, and lose much when the cores are busy (a test of 60 fits with n = 240 took
    172 s on two threads and 19 s on one, at a load of 9 on 2 cores); the default otherwise."""
    return threadpool_limits(limits=1, user_api="blas") if n < SMALL_DENSE else contextlib.nullcontext()


def identity(n: int) -> list[Term]:
    """The residual component I (n, n)."""
    index = np.arange(n)
    return [UnitPairs(rows=index, cols=index)]
