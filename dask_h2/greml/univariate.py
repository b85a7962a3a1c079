"""Fit h² for every trait from one eigendecomposition of K (pure numpy, no I/O)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import scipy.special

from dask_h2.kinship.eigen import Eigen, eigendecompose
from dask_h2.errors import InputError, ParameterError
from dask_h2.greml.interval import profile_interval
from dask_h2.traits import case_fraction
from dask_h2.greml.likelihood import Method, RotatedProblem, evaluate, observed_information, reduce_problem, rotate
from dask_h2.results import NotEstimable, TraitFit, liability_factor
from dask_h2.traits import case_control_traits, check_complete_cases, design_matrix, missingness_patterns, screen_traits
from dask_h2.greml.optimize import LOG_DELTA_BOUND, h2_pair, maximize_h2


@dataclass(frozen=True, kw_only=True)
class RotatedTrait:
    """One trait on its complete cases ``samples`` (r,) in the eigenbasis of their K: ``s`` (r,), ``y`` (r,),
    ``X`` (r, p)."""

    index: int  # column in the traits matrix
    name: str
    s: np.ndarray
    y: np.ndarray
    X: np.ndarray
    samples: np.ndarray  # positions of the fitted samples, ascending


def fixed_effects(eigen: Eigen, pcs: int, *, covariates: np.ndarray | None = None,
                  covariate_names: Sequence[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """X (n, 1 + pcs + c) and its column names: intercept, top ``pcs`` PCs of K, then the covariates (n, c)."""
    n = eigen.values.shape[0]
    c = 0 if covariates is None else np.asarray(covariates).reshape(n, -1).shape[1]
    most = n - c - 3  # a fit needs more samples than fixed effects + 1 (see rotated_traits)
    if not 0 <= pcs <= most:
        if most < 0:
            raise InputError(f"{n} samples are too few for the intercept and {c} covariate column(s)")
        raise ParameterError(f"{{pcs}}: must be between 0 and {most} with {n} samples and {c} covariate column(s)",
                             pcs=pcs)
    return design_matrix(eigen.principal_components(pcs), covariates, covariate_names=covariate_names)


def profile_loglik(problem: RotatedProblem) -> Callable[[float], float]:
    """h² ↦ log L with β and σ²p at their optimum; h² = 1 is the limit at δ = 1e-10, as in the search.
    Evaluated on y / c (:func:`unit_scale`), which only shifts log L by dof·log c."""
    scale = unit_scale(problem.y)
    unit, shift = replace(problem, y=problem.y / scale), problem.dof * np.log(scale)

    def loglik(h2: float) -> float:
        h2, one_minus_h2 = _h2_and_complement(h2)
        return evaluate(unit, h2, one_minus_h2=one_minus_h2).loglik - shift

    return loglik


def unit_scale(y: np.ndarray) -> float:
    """The root mean square c of ``y`` (1 for zero): y / c is of order 1 whatever the units of y
    (1e-150 or 1e150), so that the likelihood neither underflows nor overflows, and the same
    for y and any multiple of it."""
    largest = float(np.max(np.abs(y), initial=0.0))
    if not (largest > 0 and np.isfinite(largest)):
        return 1.0
    return largest * float(np.sqrt(np.mean(np.square(y / largest))))


def _h2_and_complement(h2: float) -> tuple[float, float]:
    return h2_pair(-LOG_DELTA_BOUND) if h2 >= 1.0 else (h2, 1.0 - h2)


def fit_rotated(name: str, *, s: np.ndarray, y: np.ndarray, X: np.ndarray, method: Method,
                constrain: bool = True) -> TraitFit:
    """Maximise the profile likelihood of one rotated trait: ``s`` (n,), ``y`` (n,), ``X`` (n, p).

    ``constrain=False`` lets h² go below 0 (as long as V stays positive definite), which
    makes the estimator unbiased at h² = 0 (GCTA's --reml-no-constrain). The fit is that of y / c
    (:func:`unit_scale`), its variances, β and log L brought back to the units of y, so that it is
    the same at any scale of y.
    """
    scale = unit_scale(y)
    y = y / scale
    full = RotatedProblem(s=s, y=y, X=X, method=method)
    problem = reduce_problem(s, y, X=X, method=method)
    lower = 0.0 if constrain else _lowest_h2(problem.s)
    optimum = maximize_h2(lambda h2, one_minus_h2: evaluate(problem, h2, one_minus_h2=one_minus_h2).loglik, lower=lower)
    ci_low, ci_high = profile_interval(profile_loglik(problem), h2=optimum.h2, loglik_max=optimum.loglik, lower=lower)
    h2, one_minus_h2 = _h2_and_complement(optimum.h2)
    at = evaluate(problem, h2, one_minus_h2=one_minus_h2)
    logl0 = evaluate(problem, 0.0, one_minus_h2=1.0).loglik
    sigma_p2 = at.sigma_p2
    covariance = inverse_or_nan(observed_information(problem, at))
    jacobian = np.array([[h2, sigma_p2], [one_minus_h2, -sigma_p2], [1.0, 0.0], [0.0, 1.0]])
    se = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", jacobian, covariance, jacobian), 0.0, None))
    lrt = max(2.0 * (optimum.loglik - logl0), 0.0)
    variance, shift = scale**2, problem.dof * np.log(scale)  # back to the units of y
    return TraitFit(
        name=name,
        method=method,
        h2=optimum.h2,
        h2_se=float(se[3]),
        h2_ci_low=ci_low,
        h2_ci_high=ci_high,
        sigma_g2=optimum.h2 * sigma_p2 * variance,
        sigma_g2_se=float(se[0]) * variance,
        sigma_e2=(1.0 - optimum.h2) * sigma_p2 * variance,
        sigma_e2_se=float(se[1]) * variance,
        vp=sigma_p2 * variance,
        vp_se=float(se[2]) * variance,
        delta=float(np.exp(optimum.log_delta)) if not np.isnan(optimum.log_delta) else (1.0 - h2) / h2,
        logL=optimum.loglik - shift,
        logL0=logl0 - shift,
        lrt=lrt,
        pval=float(0.5 * scipy.special.chdtrc(1, lrt)),
        n=full.n,
        boundary=optimum.boundary,
        beta=(evaluate(full, h2, one_minus_h2=one_minus_h2).beta * scale).tolist(),
        n_null_removed=problem.n_null_removed,
        converged=True,
    )


def _lowest_h2(s: np.ndarray) -> float:
    """Smallest h² < 0 keeping every h² s_i + 1 − h² > 0 (bounded at −10)."""
    largest = float(np.max(s))
    return max(-1.0 / (largest - 1.0), -10.0) * (1.0 - 1e-9) if largest > 1.0 else -10.0


def inverse_or_nan(information: np.ndarray) -> np.ndarray:
    """The inverse of a symmetric information matrix, or NaN when it is not positive definite (no SEs)."""
    if not np.all(np.isfinite(information)) or np.linalg.eigvalsh(information)[0] <= 0:
        return np.full_like(information, np.nan)
    return np.linalg.inv(information)


def rotated_traits(
    eigen: Eigen,
    traits: np.ndarray,
    *, names: Sequence[str],
    pcs: int = 10,
    covariates: np.ndarray | None = None,
    covariate_names: Sequence[str] | None = None,
    subset_eigen: Callable[[np.ndarray], Eigen] | None = None) -> Iterator[RotatedTrait | NotEstimable]:
    """Every column of ``traits`` (n, k; NaN = missing) on its complete cases, in the eigenbasis,
    or :class:`NotEstimable` saying why it cannot be fitted (see :func:`dask_h2.traits.screen_traits`).

    A sample enters a trait's fit when the trait and every covariate (n, c; NaN = missing)
    are observed for it. Traits are grouped by that pattern; a pattern that lacks samples
    is rotated by ``subset_eigen(index)``, the eigendecomposition of K[index][:, index]
    (``index`` (r,) ascending sample positions), while the PCs stay those of the
    full-sample K, subset to the same rows (GCTA's convention).
    """
    traits = np.asarray(traits, dtype=np.float64).reshape(eigen.values.shape[0], -1)
    X, columns = fixed_effects(eigen, pcs, covariates=covariates, covariate_names=covariate_names)
    kept, refused = screen_traits(traits, names, X=X)
    yield from refused
    for key, positions in missingness_patterns(traits[:, kept], X).items():
        members = [kept[i] for i in positions]
        observed = np.frombuffer(key, dtype=bool)
        try:
            what = check_complete_cases(observed, names[members[0]], X=X, columns=columns)
            if observed.all():
                sub = eigen
            elif subset_eigen is None:
                raise InputError(f"{what}: has missing values but no kinship matrix to subset")
            else:
                sub = subset_eigen(np.flatnonzero(observed))
        except InputError as exc:  # the fixed effects on these samples: every trait of the pattern
            yield from (NotEstimable(index=j, name=str(names[j]), reason=str(exc)) for j in members)
            continue
        Y_rot, X_rot = rotate(sub.vectors, traits[observed][:, members], X=X[observed])
        for i, j in enumerate(members):
            yield RotatedTrait(
                index=j, name=str(names[j]), s=sub.values, y=Y_rot[:, i], X=X_rot, samples=np.flatnonzero(observed)
            )


def dense_subset_eigen(kinship: np.ndarray) -> Callable[[np.ndarray], Eigen]:
    """``subset_eigen`` for an in-memory K (n, n): decomposes K[index][:, index] on each call."""
    return lambda index: eigendecompose(kinship[np.ix_(index, index)], overwrite=True)


def fit_all(rotated: Iterable[RotatedTrait | NotEstimable], *, method: Method = "REML", constrain: bool = True,
            traits: np.ndarray | None = None,
            prevalence: Sequence[float | None] | None = None) -> list[TraitFit | NotEstimable]:
    """Each trait of :func:`rotated_traits` fitted (:func:`fit_rotated`), those that are
    :class:`NotEstimable` kept as they are, in the order of the traits' columns. With the
    ``traits`` (n, k) that were rotated and their ``prevalence`` (see :func:`case_control_traits`),
    case-control traits are also on the liability scale (:func:`liability_scale`)."""
    def fitted(t: RotatedTrait) -> TraitFit:
        fit = fit_rotated(t.name, s=t.s, y=t.y, X=t.X, method=method, constrain=constrain)
        return (
            fit
            if prevalence is None
            else liability_scale(fit, values=traits[t.samples, t.index], prevalence=prevalence[t.index])
        )

    results = {t.index: t if isinstance(t, NotEstimable) else fitted(t) for t in rotated}
    return [results[j] for j in sorted(results)]


def fit_traits(eigen: Eigen, traits: np.ndarray, *, names: Sequence[str], method: Method = "REML", pcs: int = 10,
               covariates: np.ndarray | None = None, subset_eigen: Callable[[np.ndarray], Eigen] | None = None,
               constrain: bool = True, covariate_names: Sequence[str] | None = None,
               prevalence: Sequence[float | None] | None = None) -> list[TraitFit]:
    """Fit every trait by REML or ML from one eigendecomposition of K.

    Parameters
    ----------
    eigen : Eigen
        K's eigendecomposition over n samples.
    traits : numpy.ndarray
        (n, k) float64, NaN = missing; a trait is fitted on the samples where it and every covariate
        are observed (:func:`rotated_traits`), rotated by ``subset_eigen(index)`` when some are missing.
    names : sequence of str
        The traits' names (k,).
    method : {"REML", "ML"}
        The likelihood.
    pcs : int
        Top eigenvectors of K used as fixed effects, with the intercept and ``covariates``.
    covariates : numpy.ndarray, optional
        (n, c), NaN = missing, named ``covariate_names``.
    subset_eigen : callable, optional
        index (r,) ↦ the eigendecomposition of K[index][:, index] (e.g. :func:`dense_subset_eigen`).
    constrain : bool
        h² within [0, 1]; False allows h² < 0 while V stays positive definite.
    prevalence : sequence of float or None, optional
        One per trait: a case-control trait's population prevalence adds h² on the liability scale.

    Returns
    -------
    list of TraitFit
        In the order of the columns. A trait that cannot be fitted raises :class:`InputError`
        (:func:`fit_all` keeps it as :class:`~dask_h2.results.NotEstimable` instead).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> W = rng.standard_normal((200, 1000)); K = W @ W.T / 1000
    >>> y = np.linalg.cholesky(0.5 * K + 0.5 * np.eye(200)) @ rng.standard_normal(200)
    >>> (fit,) = fit_traits(eigendecompose(K), y[:, None], names=["y"], pcs=0)
    >>> fit.method, 0.0 < fit.h2 < 1.0, fit.n
    ('REML', True, 200)
    """
    traits, prevalence = case_control_traits(traits, names, prevalence=prevalence)
    results = fit_all(
        rotated_traits(
            eigen,
            traits,
            names=names,
            pcs=pcs,
            covariates=covariates,
            covariate_names=covariate_names,
            subset_eigen=subset_eigen,
        ),
        method=method,
        constrain=constrain,
        traits=traits,
        prevalence=prevalence,
    )
    refused = next((r for r in results if isinstance(r, NotEstimable)), None)
    if refused is not None:
        raise InputError(refused.reason)
    return results


def liability_scale(fit: TraitFit, *, values: np.ndarray, prevalence: float | None) -> TraitFit:
    """``fit`` with h² on the liability scale when the trait has a ``prevalence``; ``values`` (n,)
    are the trait on the fitted samples, whose proportion of cases is P."""
    if prevalence is None:
        return fit
    fraction = case_fraction(values)
    factor = liability_factor(fraction, prevalence)
    return replace(fit, prevalence=prevalence, case_fraction=fraction, h2_liability=float(factor * fit.h2),
                   h2_liability_se=float(factor * fit.h2_se))
