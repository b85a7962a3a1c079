"""AI-REML: Newton steps with GCTA's average information, within bounds (pure numpy).

The likelihood is that of :mod:`dask_h2.greml.reml`, in components φ (M,). The fitted parameters
θ (q,) give φ through a :class:`QuadraticMap` φ(θ) = c + Lθ + ½ [θᵀQ_mθ]_m: the identity
for several GRMs, the variances and covariances of two traits, or a 2 × 2 covariance of
rank one (φ = (a², b², ±ab): a genetic correlation of ±1). Each step solves

    (JᵀAI J − Σ_m score_m Q_m) Δθ = Jᵀ score,   J = ∂φ/∂θ,

the average-information Newton step in θ (the second term is the curvature of φ(θ), zero
when the map is linear; an evaluation that also gives the expected information F puts the
observed information 2 AI − F in place of the AI, an exact Newton step), on the parameters
that are not held at their lower bound (a
parameter at its bound whose gradient points outward stays there: an active set). A step
that raises log L by less than 10⁻⁴ of the gain gᵀΔθ it predicts (Armijo's rule), or leaves
V not positive definite, is halved. The fit has converged when the predicted gain of the
next step, ½ gᵀΔθ, is below ``GAIN_TOLERANCE``, or when no step raises log L any more while
that gain is within ``STALL_GAIN`` of log L's rounding (the AI is not the Hessian, and near
a bound of a nonlinear map its steps can stop contracting below that level). After
``max_iter`` iterations, or a step that fails with more gain in view, it stops with
``converged=False`` and the last estimates.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:  # annotations only: the API reads MAX_ITER without loading SciPy's linear algebra
    from dask_h2.greml.reml import Pieces

MAX_ITER = 100  # GCTA's --reml-maxit default
GAIN_TOLERANCE = 1e-18  # predicted log-likelihood gain of one more step at convergence (AI steps converge linearly)
HALVINGS = 40
ARMIJO = 1e-4  # a step must raise log L by this fraction of the gain it predicts
LOGLIK_ROUNDING = 1e-13  # relative rounding of log L
STALL_GAIN = 100.0  # times log L's rounding: a predicted gain the likelihood cannot confirm any more


@dataclass(frozen=True, kw_only=True)
class QuadraticMap:
    """φ(θ) = ``offset`` + ``linear`` θ + ½ [θᵀ ``quadratic``[m] θ]_m with θ ≥ ``lower``.

    ``offset`` (M,), ``linear`` (M, q), ``quadratic`` (M, q, q) symmetric, ``lower`` (q,) (−inf: unbounded).
    """

    offset: np.ndarray
    linear: np.ndarray
    quadratic: np.ndarray
    lower: np.ndarray

    def phi(self, theta: np.ndarray) -> np.ndarray:
        return self.offset + self.linear @ theta + 0.5 * np.einsum("mij,i,j->m", self.quadratic, theta, theta)

    def jacobian(self, theta: np.ndarray) -> np.ndarray:
        """∂φ/∂θ (M, q)."""
        return self.linear + np.einsum("mij,j->mi", self.quadratic, theta)

    def curvature(self, score: np.ndarray) -> np.ndarray:
        """Σ_m score_m ∂²φ_m/∂θ² (q, q)."""
        return np.einsum("m,mij->ij", score, self.quadratic)


def identity_map(lower: np.ndarray) -> QuadraticMap:
    """φ = θ with bounds ``lower`` (M,)."""
    m = lower.shape[0]
    return QuadraticMap(
        offset=np.zeros(m), linear=np.eye(m), quadratic=np.zeros((m, m, m)), lower=np.asarray(lower, dtype=np.float64)
    )


@dataclass(frozen=True, kw_only=True)
class AIResult:
    """The fitted ``theta`` (q,), its ``phi`` (M,), the REML ``pieces`` there, whether the fit
    ``converged`` and in how many ``iterations``, and which parameters are ``at_bound`` (q,)."""

    theta: np.ndarray
    phi: np.ndarray
    pieces: Pieces
    converged: bool
    iterations: int
    at_bound: np.ndarray


Evaluate = Callable[[np.ndarray], "Pieces | None"]  # φ ↦ REML pieces, None where V is not positive definite


def maximize(evaluate: Evaluate, *, mapping: QuadraticMap, theta0: np.ndarray, max_iter: int = MAX_ITER) -> AIResult:
    """Maximise log L(φ(θ)) from ``theta0`` (where V must be positive definite) by AI-REML."""
    theta = np.maximum(np.asarray(theta0, dtype=np.float64), mapping.lower)
    pieces = evaluate(mapping.phi(theta))
    if pieces is None:
        raise ValueError("V is not positive definite at the starting values")
    iteration = 0
    while True:
        gradient, step = _newton_step(mapping, theta, pieces)
        gain = 0.5 * float(gradient @ step)
        converged = gain < GAIN_TOLERANCE
        near = gain <= STALL_GAIN * LOGLIK_ROUNDING * max(1.0, abs(pieces.loglik))  # only the full step is tried
        taken = None if converged or iteration == max_iter else _line_search(
            evaluate, mapping, theta, step, 2.0 * gain, pieces.loglik, 1 if near else HALVINGS)
        if taken is None:  # converged, out of iterations, or no step along the Newton direction raises log L
            return AIResult(
                theta=theta,
                phi=mapping.phi(theta),
                pieces=pieces,
                converged=converged or (near and iteration < max_iter),
                iterations=iteration,
                at_bound=_at_bound(mapping, theta, gradient),
            )
        theta, pieces = taken
        iteration += 1


def _newton_step(mapping: QuadraticMap, theta: np.ndarray, pieces: Pieces) -> tuple[np.ndarray, np.ndarray]:
    """(gradient (q,), step (q,)): the AI Newton step on the parameters not held at their bound."""
    jacobian = mapping.jacobian(theta)
    gradient = jacobian.T @ pieces.score
    hessian = jacobian.T @ pieces.information() @ jacobian - mapping.curvature(pieces.score)
    free = ~_at_bound(mapping, theta, gradient)
    step = np.zeros_like(theta)
    if free.any():
        step[free] = _solve_positive(hessian[np.ix_(free, free)], gradient[free])
    return gradient, step


def _at_bound(mapping: QuadraticMap, theta: np.ndarray, gradient: np.ndarray) -> np.ndarray:
    """Parameters at their lower bound with a gradient that does not point inside (bool (q,))."""
    return (theta <= mapping.lower) & (gradient <= 0.0)


def _solve_positive(hessian: np.ndarray, gradient: np.ndarray) -> np.ndarray:
    """H⁻¹g with H's eigenvalues made positive (|λ|, at least 1e-10 of the largest): an ascent step."""
    values, vectors = np.linalg.eigh(hessian)
    floor = 1e-10 * max(float(np.max(np.abs(values))), np.finfo(float).tiny)
    values = np.maximum(np.abs(values), floor)
    return vectors @ ((vectors.T @ gradient) / values)


def _line_search(evaluate: Evaluate, mapping: QuadraticMap, theta: np.ndarray, step: np.ndarray, slope: float,
                 loglik: float, tries: int) -> tuple[np.ndarray, Pieces] | None:
    """The first of θ + step, θ + step/2, … (``tries`` of them, projected onto the bounds) that
    raises log L by ``ARMIJO`` of the predicted gain (``slope`` = gᵀΔθ per unit step)."""
    fraction = 1.0
    for _ in range(tries):
        candidate = np.maximum(theta + fraction * step, mapping.lower)
        pieces = evaluate(mapping.phi(candidate))
        if pieces is not None and pieces.loglik - loglik >= ARMIJO * fraction * slope:
            return candidate, pieces
        fraction /= 2.0
    return None


def delta_se(covariance: np.ndarray, gradient: np.ndarray) -> float:
    """SE of a function of φ̂ with ``gradient`` (M,) at φ̂, from the covariance (M, M) of φ̂ (the inverse AI)."""
    return float(np.sqrt(max(float(gradient @ covariance @ gradient), 0.0)))
