"""Bivariate REML (GCTA's ``--reml-bivar``): genetic and residual (co)variances of two traits.

Model: the traits stacked, y = (y₁, y₂), with
V = [[Vg₁K₁₁ + Ve₁I, CgK₁₂ + CeI₁₂], [·, Vg₂K₂₂ + Ve₂I]] (K₁₂ between the samples of trait 1
and of trait 2, I₁₂ pairing a sample with itself) and each trait its own fixed effects.
The components φ = (Vg₁, Vg₂, Cg, Ve₁, Ve₂, Ce) are fitted by AI-REML (:mod:`dask_h2.greml.aireml`);
Ce is left out when fewer than ``MIN_COMMON`` samples have both traits (GCTA's
``--reml-bivar-nocove``).

Two ways to V (:mod:`dask_h2.greml.pair_model`): in the eigenbasis of K, O(n) per evaluation,
when both traits are observed on the same samples; dense otherwise.

By default the variances are ≥ 0 and G and E positive semidefinite (|rG| ≤ 1, |rE| ≤ 1):
when the fit leaves a 2 × 2 matrix indefinite, it is refitted as a rank-one matrix
(a², b², ±ab), the boundary |r| = 1. The same parametrization fits the nulls of the LRTs
of rG = ±1; rG = 0 fixes Cg at 0. rG = Cg/√(Vg₁Vg₂) gets its SE by the delta method from
the inverse AI (GCTA's ``calcu_rg``).
"""
from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np
import scipy.special

from dask_h2.greml.aireml import MAX_ITER, AIResult, QuadraticMap, delta_se, maximize
from dask_h2.kinship.eigen import Eigen
from dask_h2.errors import InputError
from dask_h2.greml.univariate import inverse_or_nan, rotate
from dask_h2.traits import case_control_traits, case_fraction, collinear_pair, complete_cases, screen_traits
from dask_h2.greml.pair_model import (E11, E12, E22, G11, G12, G22, MIN_COMMON, PairModel, dense_pair_model,
                         eigen_pair_model)
from dask_h2.greml.reml import blas_threads_for
from dask_h2.results import PairFit, liability_factor

DENSE_MAX_OBSERVATIONS = 15_000  # n₁ + n₂ of the dense path: V and V⁻¹ take 16 (n₁ + n₂)² bytes
DENSE_STEPS = (30, 50)  # factorizations of V a dense fit and its three LRT nulls take (38 measured at N = 2,000)
log = logging.getLogger("dask_h2")


@dataclass(frozen=True, kw_only=True)
class Shape:
    """How a 2 × 2 covariance matrix is parametrized: ``free`` (v₁, v₂, c), ``zero`` (v₁, v₂; c = 0)
    or ``rank1`` (a, b: v₁ = a², v₂ = b², c = ``sign``·ab)."""

    kind: str
    sign: float = 1.0


FREE, ZERO = Shape(kind="free"), Shape(kind="zero")


def pair_map(genetic: Shape, residual: Shape, *, n_components: int, constrain: bool) -> QuadraticMap:
    """φ(θ) for the genetic and residual shapes (the residual ``zero`` without Ce when ``n_components``
    is 5); variances ≥ 0 when ``constrain`` (a and b of a rank-one matrix are ≥ 0 always)."""
    blocks = ((genetic, (G11, G22, G12)), (residual, (E11, E22, E12)))
    q = sum(_width(shape) for shape, _ in blocks)
    linear, quadratic, lower = np.zeros((n_components, q)), np.zeros((n_components, q, q)), []
    start = 0
    for shape, (v1, v2, c) in blocks:
        if shape.kind == "rank1":  # φ = (a², b², ±ab)
            a, b = start, start + 1
            quadratic[v1, a, a] = quadratic[v2, b, b] = 2.0
            quadratic[c, a, b] = quadratic[c, b, a] = shape.sign
            lower += [0.0, 0.0]
        else:
            for j, m in enumerate((v1, v2, c)[: _width(shape)]):
                linear[m, start + j] = 1.0
            lower += [0.0 if constrain else -np.inf] * 2 + [-np.inf] * (_width(shape) - 2)
        start += _width(shape)
    return QuadraticMap(offset=np.zeros(n_components), linear=linear, quadratic=quadratic, lower=np.array(lower))


def _width(shape: Shape) -> int:
    return 3 if shape.kind == "free" else 2


def theta_from_phi(phi: np.ndarray, genetic: Shape, *, residual: Shape) -> np.ndarray:
    """Starting θ for the shapes from components φ (a rank-one matrix from its diagonal)."""
    theta = []
    for shape, (v1, v2, c), (scale1, scale2) in ((genetic, (G11, G22, G12), (E11, E22)),
                                                  (residual, (E11, E22, E12), (G11, G22))):
        if shape.kind == "rank1":  # a² at least 1e-6 of the trait's other variance, so that a and b are not 0
            theta += [np.sqrt(max(phi[v1], 1e-6 * abs(phi[scale1]))), np.sqrt(max(phi[v2], 1e-6 * abs(phi[scale2])))]
        else:
            theta += [phi[v1], phi[v2]] + ([phi[c]] if shape.kind == "free" else [])
    return np.array(theta, dtype=np.float64)


def fit_pair(model: PairModel, *, names: tuple[str, str], constrain: bool = True, max_iter: int = MAX_ITER) -> PairFit:
    """The bivariate REML fit of one pair with its LRTs of rG = 0, 1 and −1 (see the module docstring)."""
    residual = FREE if model.n_components == 6 else ZERO
    with blas_threads_for(sum(model.n_per_trait)):
        if model.path == "dense":
            _announce_cost(model, names)
        main, shapes = _fit(model, FREE, residual, model.start, constrain, max_iter)
        nulls = {
            value: _fit(model, shape, residual, main.phi, constrain, max_iter)[0]
            for value, shape in ((0, ZERO), (1, Shape(kind="rank1", sign=1.0)), (-1, Shape(kind="rank1", sign=-1.0)))
        }
    phi, loglik = main.phi, main.pieces.loglik
    covariance = inverse_or_nan(main.pieces.ai)
    lrt = {value: max(2.0 * (loglik - null.pieces.loglik), 0.0) for value, null in nulls.items()}
    converged = main.converged and all(null.converged for null in nulls.values())
    if not converged:
        warnings.warn(f"traits {names[0]}, {names[1]}: bivariate AI-REML did not converge in {max_iter} iterations "
                      f"(the fit or a null fit of its LRTs); its estimates are the last iterate (converged: false)",
                      RuntimeWarning, stacklevel=2)
    unit = np.eye(model.n_components)
    se = [delta_se(covariance, unit[m]) for m in range(model.n_components)] + [np.nan] * (6 - model.n_components)
    value = np.r_[phi, np.zeros(6 - model.n_components)]
    vp = [value[G11] + value[E11], value[G22] + value[E22]]
    h2 = [value[G11] / vp[0], value[G22] / vp[1]]
    h2_gradients = [(unit[G11] * (1 - h2[0]) - unit[E11] * h2[0]) / vp[0],
                    (unit[G22] * (1 - h2[1]) - unit[E22] * h2[1]) / vp[1]]
    rg, rg_gradient = _correlation(value, (G11, G22, G12), unit)
    return PairFit(
        traits=names, vg=_matrix(value, (G11, G22, G12)), vg_se=_matrix(se, (G11, G22, G12)),
        ve=_matrix(value, (E11, E22, E12)), ve_se=_matrix(se, (E11, E22, E12)),
        vp=vp, vp_se=[delta_se(covariance, unit[G11] + unit[E11]), delta_se(covariance, unit[G22] + unit[E22])],
        h2=h2, h2_se=[delta_se(covariance, g) for g in h2_gradients],
        rg=rg, rg_se=delta_se(covariance, rg_gradient) if np.isfinite(rg) else np.nan,
        re=_correlation(value, (E11, E22, E12), unit)[0],
        logL=loglik, logL_rg0=nulls[0].pieces.loglik, lrt_rg0=lrt[0], pval_rg0=float(scipy.special.chdtrc(1, lrt[0])),
        logL_rg1=nulls[1].pieces.loglik, lrt_rg1=lrt[1], pval_rg1=float(0.5 * scipy.special.chdtrc(1, lrt[1])),
        logL_rg_minus1=nulls[-1].pieces.loglik, lrt_rg_minus1=lrt[-1],
        pval_rg_minus1=float(0.5 * scipy.special.chdtrc(1, lrt[-1])),
        n=sum(model.n_per_trait), n_per_trait=list(model.n_per_trait), n_common=model.n_common,
        residual_covariance=model.n_components == 6, path=model.path,
        boundary=bool(main.at_bound.any() or any(shape.kind == "rank1" for shape in shapes)),
        converged=converged,
    )


def _announce_cost(model: PairModel, names: tuple[str, str]) -> None:
    """Say what a dense fit will cost before it runs, from the time of its first factorization of V."""
    started = time.perf_counter()
    model.evaluate(model.start)
    step = time.perf_counter() - started
    low, high = (steps * step for steps in DENSE_STEPS)
    minutes = high >= 120
    span = f"{low / 60:.0f}-{high / 60:.0f} min" if minutes else f"{low:.0f}-{high:.0f} s"
    log.info(f"traits {names[0]} and {names[1]} are observed on different samples: the dense bivariate REML "
             f"factors V ({sum(model.n_per_trait)} x {sum(model.n_per_trait)}) at each of about {DENSE_STEPS[0]}-"
             f"{DENSE_STEPS[1]} steps (the fit and the null fits of its LRTs), {step:.2g} s each here: about "
             f"{span}; the {model.n_common} samples with both traits alone fit in seconds")


def _fit(model: PairModel, genetic: Shape, residual: Shape, phi: np.ndarray, constrain: bool,
         max_iter: int) -> tuple[AIResult, tuple[Shape, Shape]]:
    """AI-REML with the given shapes from components ``phi``; when ``constrain``, a 2 × 2 matrix the
    fit leaves indefinite is refitted at rank one (the boundary |r| = 1)."""
    result = _maximize(model, genetic, residual, phi, constrain, max_iter)
    while constrain:
        repaired = (_repair(genetic, result.phi, (G11, G22, G12)),
                    _repair(residual, result.phi, (E11, E22, E12)) if model.n_components == 6 else residual)
        if repaired == (genetic, residual):
            break
        genetic, residual = repaired
        result = _maximize(model, genetic, residual, result.phi, constrain, max_iter)
    return result, (genetic, residual)


def _maximize(model: PairModel, genetic: Shape, residual: Shape, phi: np.ndarray, constrain: bool,
              max_iter: int) -> AIResult:
    """AI-REML from ``phi``; rank-one starting values are shrunk towards 0 until V is positive definite.

    A rank-one matrix makes φ(θ) curved: its Newton steps then use the observed information
    (2 AI − F), whose curvature term the AI's approximation error would swamp where the scores
    are large (the constraint binds) and its steps would zigzag."""
    mapping = pair_map(genetic, residual, n_components=model.n_components, constrain=constrain)
    exact = "rank1" in (genetic.kind, residual.kind)
    theta = theta_from_phi(phi, genetic, residual=residual)
    rank_one = np.zeros(theta.shape[0], dtype=bool)
    if genetic.kind == "rank1":
        rank_one[:2] = True
    if residual.kind == "rank1":
        rank_one[_width(genetic):] = True
    for _ in range(60):
        if model.evaluate(mapping.phi(theta)) is not None:
            break
        theta = np.where(rank_one, 0.5 * theta, theta)
    return maximize(lambda value: model.evaluate(value, exact), mapping=mapping, theta0=theta, max_iter=max_iter)


def _repair(shape: Shape, phi: np.ndarray, index: tuple[int, int, int]) -> Shape:
    """``shape``, or rank one with the sign of the covariance when a free 2 × 2 matrix is indefinite."""
    v1, v2, c = (phi[i] for i in index)
    if shape.kind == "free" and c * c > v1 * v2:
        return Shape(kind="rank1", sign=1.0 if c >= 0 else -1.0)
    return shape


def _matrix(values: Sequence[float], index: tuple[int, int, int]) -> list[list[float]]:
    v1, v2, c = (float(values[i]) for i in index)
    return [[v1, c], [c, v2]]


def _correlation(value: np.ndarray, index: tuple[int, int, int], unit: np.ndarray) -> tuple[float, np.ndarray]:
    """r = c/√(v₁v₂) and its gradient in φ (NaN where a variance is not positive)."""
    v1, v2, c = (value[i] for i in index)
    if v1 <= 0 or v2 <= 0:
        return np.nan, np.zeros(unit.shape[0])
    r = c / np.sqrt(v1 * v2)
    gradient = np.zeros(unit.shape[0])
    for i, derivative in zip(index, (-r / (2 * v1), -r / (2 * v2), 1.0 / np.sqrt(v1 * v2))):
        if i < unit.shape[0]:
            gradient += derivative * unit[i]
    return float(r), gradient


def fit_bivariate(eigen: Eigen, traits: np.ndarray, *, names: Sequence[str], pairs: Sequence[tuple[int, int]],
                  X: np.ndarray, columns: Sequence[str], subset_eigen: Callable[[np.ndarray], Eigen] | None = None,
                  kinship_block: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None, constrain: bool = True,
                  prevalence: Sequence[float | None] | None = None, max_iter: int = MAX_ITER) -> list[PairFit]:
    """Bivariate REML (:func:`fit_pair`) of each pair of traits.

    Parameters
    ----------
    eigen : Eigen
        K's eigendecomposition over n samples.
    traits : numpy.ndarray
        (n, k) float64, NaN = missing, named ``names`` (k,).
    pairs : sequence of (int, int)
        Column pairs (j₁, j₂) to fit (:func:`parse_pairs` makes them of ``"T1,T2"`` or ``"all"``).
    X : numpy.ndarray
        Fixed effects (n, p), NaN = missing, its columns named ``columns``; each trait is fitted on the
        samples where it and X are observed.
    subset_eigen : callable, optional
        index ↦ the eigendecomposition of K[index][:, index], for traits observed on the same samples
        but not all n.
    kinship_block : callable, optional
        (rows, cols) ↦ K[rows][:, cols], for traits on different samples: the dense V, up to
        ``DENSE_MAX_OBSERVATIONS`` observations, beyond which the samples with both traits are fitted
        in their eigenbasis (with a warning).
    constrain : bool
        Variances ≥ 0 and |rG|, |rE| ≤ 1.
    prevalence : sequence of float or None, optional
        One per trait: the liability scale of case-control traits.
    max_iter : int
        AI-REML iterations at most.

    Returns
    -------
    list of PairFit
        One per pair; a pair with a trait that cannot be fitted (:func:`dask_h2.traits.screen_traits`),
        or of two collinear traits (:func:`dask_h2.traits.collinear_pair`), is left out with a warning,
        or refused when no pair remains.

    Examples
    --------
    >>> import numpy as np
    >>> from dask_h2 import eigendecompose
    >>> rng = np.random.default_rng(2)
    >>> W = rng.standard_normal((150, 600)); K = W @ W.T / 600
    >>> Y = np.linalg.cholesky(0.5 * K + 0.5 * np.eye(150)) @ rng.standard_normal((150, 2))
    >>> (pair,) = fit_bivariate(eigendecompose(K), Y, names=["a", "b"], pairs=[(0, 1)], X=np.ones((150, 1)),
    ...                         columns=["intercept"])
    >>> pair.traits, pair.path
    (('a', 'b'), 'eigen')
    """
    traits, prevalence = case_control_traits(traits, names, prevalence=prevalence)
    refused = {r.index: r.reason for r in screen_traits(traits, names, X=X)[1]}
    reasons = {(j1, j2): f"pair {names[j1]},{names[j2]}: {refused.get(j1) or refused[j2]}"
               for j1, j2 in pairs if j1 in refused or j2 in refused}
    for j1, j2 in (pair for pair in pairs if pair not in reasons):
        slope = collinear_pair(traits[:, j1], traits[:, j2], X=X)
        if slope is not None:
            reasons[j1, j2] = (f"pair {names[j1]},{names[j2]}: the traits are collinear on their common samples "
                               f"({names[j2]} = {slope:.6g} x {names[j1]} + fixed effects), so rG = rE = "
                               f"{np.sign(slope):+.0f} by construction")
    left_out = list(reasons)
    reasons = list(reasons.values())
    if len(left_out) == len(pairs):
        raise InputError("; ".join(reasons))
    for reason in reasons:
        warnings.warn(f"{reason}; not estimable, the other pairs are fitted", RuntimeWarning, stacklevel=2)
    fits = []
    for j1, j2 in (pair for pair in pairs if pair not in left_out):
        pair = (str(names[j1]), str(names[j2]))
        observed = {}
        for mask, members in complete_cases(traits[:, [j1, j2]], pair, X=X, columns=columns):
            observed.update({member: np.flatnonzero(mask) for member in members})
        samples = [observed[0], observed[1]]
        model = _pair_model(eigen, traits[:, [j1, j2]], X, samples, pair, subset_eigen, kinship_block)
        fit = fit_pair(model, names=pair, constrain=constrain, max_iter=max_iter)
        fits.append(_liability(fit, [traits[samples[t], j] for t, j in enumerate((j1, j2))], [prevalence[j1],
                                                                                               prevalence[j2]]))
    return fits


def _pair_model(eigen: Eigen, Y: np.ndarray, X: np.ndarray, samples: list[np.ndarray], pair: tuple[str, str],
                subset_eigen, kinship_block) -> PairModel:
    """The eigenbasis model when both traits have the same samples, else the dense one (or, beyond
    its size, the eigenbasis model of the samples with both)."""
    first, second = samples
    common = np.intersect1d(first, second)
    what = (f"traits {pair[0]} and {pair[1]} ({first.size} and {second.size} samples, {common.size} with both)")
    if not np.array_equal(first, second):
        if first.size + second.size <= DENSE_MAX_OBSERVATIONS:
            if kinship_block is None:
                raise InputError(f"{what}: observed on different samples, which needs the kinship matrix itself")
            return dense_pair_model(
                K11=kinship_block(first, first),
                K22=kinship_block(second, second),
                K12=kinship_block(first, second),
                y1=Y[first, 0],
                y2=Y[second, 1],
                X1=X[first],
                X2=X[second],
                common=(np.searchsorted(first, common), np.searchsorted(second, common)),
            )
        if common.size < max(MIN_COMMON, X.shape[1] + 2):
            raise InputError(f"{what}: fewer than {MIN_COMMON} samples with both traits, and "
                             f"{first.size + second.size} observations are beyond the dense path's "
                             f"{DENSE_MAX_OBSERVATIONS}")
        warnings.warn(f"{what}: {first.size + second.size} observations are beyond the dense path's "
                      f"{DENSE_MAX_OBSERVATIONS}; fitted on the {common.size} samples with both traits",
                      RuntimeWarning, stacklevel=3)
        first = common
    elif first.size < MIN_COMMON:
        raise InputError(f"{what}: fewer than {MIN_COMMON} samples")
    if first.size == eigen.values.shape[0]:
        sub = eigen
    elif subset_eigen is None:
        raise InputError(f"{what}: missing values but no kinship matrix to subset")
    else:
        sub = subset_eigen(first)
    Y_rot, X_rot = rotate(sub.vectors, Y[first], X=X[first])
    return eigen_pair_model(s=sub.values, Y=Y_rot, X=X_rot, raw=Y[first], raw_X=X[first])


def _liability(fit: PairFit, values: Sequence[np.ndarray], prevalence: Sequence[float | None]) -> PairFit:
    """``fit`` with each trait that has a prevalence on the liability scale (P from its fitted ``values``)."""
    if all(k is None for k in prevalence):
        return fit
    fractions = [case_fraction(v) if k is not None else None for v, k in zip(values, prevalence)]
    factors = [liability_factor(p, k) if k is not None else None for p, k in zip(fractions, prevalence)]
    return replace(fit, prevalence=list(prevalence), case_fraction=fractions,
                   h2_liability=[f * h if f is not None else None for f, h in zip(factors, fit.h2)],
                   h2_liability_se=[f * h if f is not None else None for f, h in zip(factors, fit.h2_se)])
