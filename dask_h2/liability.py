"""Case-control traits on the liability scale by PCGC: what the moments path and the exact path (from a
GRM) share. The risk model of S-PCGC (Weissbrod, Flint & Rosset 2018) gives each individual's
population risk k_i, study risk p_i, threshold t_i = Φ⁻¹(1 − k_i), weight
u_i = φ(t_i)√(p_i(1 − p_i))/(k_i(1 − k_i)) and standardized trait z_i = (y_i − p_i)/√(p_i(1 − p_i)); the
estimators (:mod:`dask_h2.moments.pcgc`, :mod:`dask_h2.greml.pcgc`) solve
Σ_l [Σ_{i≠j} u_i² u_j² K_k,ij K_l,ij] h²_l = Σ_{i≠j} u_i z_i u_j z_j K_k,ij, and their estimates with
their jackknife covariance become the report's :class:`PCGCEstimates` and :class:`~dask_h2.results.TraitFit` here.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import scipy.special

from dask_h2.errors import NAMED, InputError, ParameterError
from dask_h2.results import ComponentFit, TraitFit, normal_density
from dask_h2.traits import case_control_traits, parse_prevalence

CLIP = 1e-12  # population risks are kept in [CLIP, 1 − CLIP] (S-PCGC: u_i = 0 beyond)


@dataclass(frozen=True, kw_only=True)
class CaseProbabilities:
    """Per-individual quantities (r,) of a case-control trait on its r samples: study risk ``p``,
    population risk ``k``, weight ``u`` and standardized trait ``z``; ``var_t`` the population variance
    of the thresholds t_i = Φ⁻¹(1 − k_i) (liability variance due to the covariates), ``case_fraction`` P
    and ``n_clipped`` individuals whose k_i was clipped to [1e-12, 1 − 1e-12]."""

    p: np.ndarray
    k: np.ndarray
    u: np.ndarray
    z: np.ndarray
    var_t: float
    case_fraction: float
    n_clipped: int


def case_probabilities(y: np.ndarray, *, prevalence: float, X: np.ndarray) -> CaseProbabilities:
    """The risk model of a 0/1 trait ``y`` (r,) with fixed effects ``X`` (r, c) (its first column the
    intercept) and population prevalence K: the ascertained probit (SPEC: exact when the covariates act
    linearly on the liability), k_i = Φ(x_iᵀγ) in the population and p_i = k_i / (k_i + a(1 − k_i)) in
    the study, a = K(1 − P)/(P(1 − K)) the controls' sampling rate relative to the cases', γ by maximum
    likelihood. With the intercept alone k_i = K and p_i = P exactly.

    Examples
    --------
    >>> y = np.array([0, 1, 1, 0, 1, 0.0])
    >>> risk = case_probabilities(y, prevalence=0.1, X=np.ones((6, 1)))
    >>> float(risk.p[0]), float(risk.k[0]), risk.var_t
    (0.5, 0.1, 0.0)
    """
    y = np.asarray(y, dtype=np.float64)
    case_fraction = float(y.mean())
    a = prevalence * (1.0 - case_fraction) / (case_fraction * (1.0 - prevalence))
    varying = np.ptp(X, axis=0) > 0
    if not varying.any():
        k = np.full(y.shape, prevalence)
    else:
        k = scipy.special.ndtr(X @ _ascertained_probit(y, X, a=a, prevalence=prevalence))
    clipped = (k < CLIP) | (k > 1.0 - CLIP)
    k = np.clip(k, CLIP, 1.0 - CLIP)
    p = k / (k + a * (1.0 - k)) if varying.any() else np.full(y.shape, case_fraction)
    t = -scipy.special.ndtri(k)
    u = normal_density(t) * np.sqrt(p * (1.0 - p)) / (k * (1.0 - k))
    case = y > 0.5
    var_t = 0.0 if not varying.any() else float(
        prevalence * (1.0 - prevalence) * (t[case].mean() - t[~case].mean()) ** 2
        + prevalence * t[case].var() + (1.0 - prevalence) * t[~case].var())
    return CaseProbabilities(p=p, k=k, u=u, z=(y - p) / np.sqrt(p * (1.0 - p)), var_t=var_t,
                             case_fraction=case_fraction, n_clipped=int(clipped.sum()))


def _ascertained_probit(y: np.ndarray, X: np.ndarray, *, a: float, prevalence: float) -> np.ndarray:
    """γ (c,) maximizing Σ_i log P(y_i | x_i, in the study) with k_i = Φ(x_iᵀγ) and
    P(case | x_i, study) = k_i / (k_i + a(1 − k_i)) (BFGS with the exact gradient, from k_i = K)."""
    log_a = np.log(a)

    def objective(gamma: np.ndarray) -> tuple[float, np.ndarray]:
        eta = X @ gamma
        log_k, log_not_k = scipy.special.log_ndtr(eta), scipy.special.log_ndtr(-eta)
        log_study = np.logaddexp(log_k, log_a + log_not_k)  # log(k + a(1 − k))
        log_density = -np.square(eta) / 2.0 - np.log(np.sqrt(2.0 * np.pi))
        value = -np.sum(y * log_k + (1.0 - y) * (log_a + log_not_k) - log_study)
        slope = (y * np.exp(log_density - log_k) - (1.0 - y) * np.exp(log_density - log_not_k)
                 - (1.0 - a) * np.exp(log_density - log_study))
        return float(value), -(X.T @ slope)

    start = np.linalg.lstsq(X, np.full(y.shape, scipy.special.ndtri(prevalence)), rcond=None)[0]
    return scipy.optimize.minimize(objective, start, jac=True, method="BFGS", options={"gtol": 1e-8}).x


@dataclass(frozen=True, kw_only=True)
class PCGCEstimates:
    """h²_k (K,) on the liability scale conditional on the covariates, their total and the marginal
    total h²_cond / (1 + var_t), each with its SE; ``n_markers`` (K,)."""

    h2: np.ndarray
    h2_se: np.ndarray
    h2_total: float
    h2_total_se: float
    h2_marginal: float
    h2_marginal_se: float
    n_markers: np.ndarray


def pcgc_estimates(h2: np.ndarray, covariance: np.ndarray, *, var_t: float, n_markers: np.ndarray) -> PCGCEstimates:
    """The :class:`PCGCEstimates` of h²_k (K,) with the ``covariance`` (K, K) of their estimates (a jackknife's;
    var_t, the thresholds' variance, held fixed) and ``n_markers`` (K,) of each component."""
    total_se = float(np.sqrt(covariance.sum()))
    return PCGCEstimates(h2=h2, h2_se=np.sqrt(np.diagonal(covariance)), h2_total=float(h2.sum()),
                         h2_total_se=total_se, h2_marginal=float(h2.sum() / (1.0 + var_t)),
                         h2_marginal_se=total_se / (1.0 + var_t), n_markers=n_markers)


RISK_MODEL = "ascertained probit on the fixed effects (intercept, PCs, covariates)"


def disease_traits(values: np.ndarray, names: np.ndarray, *, prevalence: str | float | Sequence[float | None] | None,
              covariates: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """The traits (n, k) in their 0/1 coding and their prevalences for PCGC, from the traits ``values``
    (n, k) named ``names`` and the ``covariates`` (n, c; NaN = missing): every trait needs a prevalence and
    cases and controls among the samples where it and every covariate are observed (else
    :class:`ParameterError`, :class:`InputError`)."""
    prevalences = parse_prevalence(prevalence, names)
    missing = [str(name) for name, k in zip(names, prevalences) if k is None]
    if missing:
        raise ParameterError(f"{{method}}: PCGC fits case-control traits with a {{prevalence}}; trait {missing[0]} "
                             "has none (fit quantitative traits with rhe)", method="pcgc", prevalence=NAMED)
    coded, _ = case_control_traits(values, names, prevalence=prevalences)
    coded = np.column_stack([y - 1.0 if np.nanmax(y) == 2.0 else y for y in coded.T])  # PLINK's 1/2 as 0/1
    observed = ~np.isnan(covariates).any(axis=1)
    for j, name in enumerate(names):
        y = coded[observed, j]
        cases = int(np.nansum(y == 1.0))
        if cases == 0 or cases == int((~np.isnan(y)).sum()):
            raise InputError(f"trait {name}: {cases} cases and {int((~np.isnan(y)).sum()) - cases} controls among "
                             "its samples with every covariate; PCGC needs both")
    return coded, prevalences


def disease_fit(name: str, estimates: PCGCEstimates, *, risk: CaseProbabilities, prevalence: float, n_fixed: int,
                component_names: Sequence[str]) -> TraitFit:
    """The report's fit of disease ``name`` (``method`` PCGC) from its ``estimates`` and ``risk`` model on its
    samples, with the ``component_names`` (K,) of its components."""
    components = [ComponentFit(name=component, n_markers=int(estimates.n_markers[k]), sigma2=None, sigma2_se=None,
                               h2=float(estimates.h2[k]), h2_se=float(estimates.h2_se[k]))
                  for k, component in enumerate(component_names)]
    return TraitFit(name=name, method="PCGC", h2=estimates.h2_total, h2_se=estimates.h2_total_se, sigma_g2=None,
                    sigma_g2_se=None, sigma_e2=None, sigma_e2_se=None, vp=None, vp_se=None, n=int(risk.u.size),
                    n_fixed=n_fixed, components=components, prevalence=prevalence, case_fraction=risk.case_fraction,
                    h2_liability=estimates.h2_total, h2_liability_se=estimates.h2_total_se,
                    h2_marginal=estimates.h2_marginal, h2_marginal_se=estimates.h2_marginal_se,
                    threshold_variance=risk.var_t)
