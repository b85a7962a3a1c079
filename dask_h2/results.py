"""What a fit gives, whichever path made it: one trait's fit, one pair's, the traits left out, and the
report that holds them all with what they share (as JSON with :meth:`FitReport.to_dict`).

Variances are in the trait's units squared; h² = σ²g / Vp. An exact-path fit (REML, ML, several
GRMs) has the likelihood's quantities (log L, LRT, the profile CI, β); a moments fit (RHE) has
none of them (``None``, left out of the JSON) and the number of fixed effects instead.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True, kw_only=True)
class ComponentFit:
    """One variance component of a trait (one GRM, or one part of a partition of the markers):
    its ``n_markers``, ``sigma2`` σ²_k and ``h2`` h²_k = σ²_k / Vp, each with its SE (PCGC: h²_k on the
    liability scale, no σ²_k)."""

    name: str
    n_markers: int
    sigma2: float | None
    sigma2_se: float | None
    h2: float
    h2_se: float


@dataclass(frozen=True, kw_only=True)
class TraitFit:
    """The fit of one trait: h² and the variance components with their SEs, on ``n`` samples.

    With several components, ``h2`` and ``sigma_g2`` are their totals and ``components`` lists each.
    The likelihood's quantities are those of REML or ML (``None`` for a moments estimate). PCGC
    (case-control traits) estimates h² on the liability scale directly: ``h2`` = ``h2_liability``, the
    h² conditional on the fixed effects, and has no σ² or Vp (``None``).
    """

    name: str
    method: str  # REML, ML, RHE or PCGC
    h2: float
    h2_se: float
    h2_ci_low: float | None = None  # 95% profile-likelihood interval (see dask_h2.greml.interval)
    h2_ci_high: float | None = None
    sigma_g2: float | None
    sigma_g2_se: float | None
    sigma_e2: float | None
    sigma_e2_se: float | None
    vp: float | None
    vp_se: float | None
    delta: float | None = None  # σ²e/σ²g: inf at h² = 0, 0 at h² = 1
    logL: float | None = None
    logL0: float | None = None  # at h² = 0
    lrt: float | None = None
    pval: float | None = None  # ½ χ²₁ survival of the LRT (boundary null, as GCTA)
    n: int
    n_fixed: int | None = None  # fixed effects of a moments fit (the exact path's are in the report)
    boundary: bool | None = None
    beta: list[float] | None = None  # GLS estimate at ĥ², in the order of the fixed effects
    n_null_removed: int | None = None  # directions of null(K) ∩ span(X) removed (ML only)
    converged: bool | None = None  # False: an iterative fit (AI-REML) stopped at its iteration limit
    cg_residual: float | None = None  # MC-REML: largest relative CG residual of the last solve (≥ tolerance: failed)
    components: list[ComponentFit] = field(default_factory=list)
    prevalence: float | None = None  # the K of a case-control trait; with it:
    case_fraction: float | None = None  # P, proportion of cases among the n fitted samples
    h2_liability: float | None = None  # h2 on the liability scale (Lee et al. 2011), see liability_factor
    h2_liability_se: float | None = None
    h2_marginal: float | None = None  # PCGC: h²_L / (1 + threshold_variance), of the whole liability's variance
    h2_marginal_se: float | None = None
    threshold_variance: float | None = None  # PCGC: liability variance explained by the fixed effects (var_t)

    @property
    def likelihood(self) -> bool:
        """Whether the fit maximised a likelihood (REML, ML), so that log L, its LRT and P exist."""
        return self.logL is not None


@dataclass(frozen=True, kw_only=True)
class PairComponentFit:
    """One variance component of a pair's moments fit: ``vg`` [[V(G_k)₁, C(G_k)], [C(G_k), V(G_k)₂]] and
    ``rg`` = C(G_k)/√(V(G_k)₁V(G_k)₂), with SEs."""

    name: str
    n_markers: int
    vg: list[list[float]]
    vg_se: list[list[float]]
    rg: float
    rg_se: float


@dataclass(frozen=True, kw_only=True)
class PairFit:
    """The bivariate fit of two traits. 2 × 2 matrices are [[trait 1, covariance], [covariance, trait 2]].

    ``n`` is GCTA's: the observations of both traits together (n₁ + n₂); ``n_per_trait`` and
    ``n_common`` (samples with both) say where they come from. ``path`` is ``eigen`` or ``dense``
    (REML), or ``moments`` (RHE: no likelihood, its quantities ``None``; ``components`` per component;
    PCGC, two diseases: ``vg`` their liability-scale h² and genetic covariance, no residual terms).
    """

    traits: tuple[str, str]
    vg: list[list[float]]
    vg_se: list[list[float]]
    ve: list[list[float]] | None  # None: PCGC (liability scale, no residual terms)
    ve_se: list[list[float]] | None
    vp: list[float] | None
    vp_se: list[float] | None
    h2: list[float]
    h2_se: list[float]
    rg: float
    rg_se: float
    re: float | None  # residual correlation Ce/√(Ve₁Ve₂)
    logL: float | None = None
    logL_rg0: float | None = None
    lrt_rg0: float | None = None
    pval_rg0: float | None = None  # P(χ²₁ > LRT): rG = 0 lies inside (−1, 1)
    logL_rg1: float | None = None
    lrt_rg1: float | None = None
    pval_rg1: float | None = None  # ½ P(χ²₁ > LRT): rG = 1 is a bound
    logL_rg_minus1: float | None = None
    lrt_rg_minus1: float | None = None
    pval_rg_minus1: float | None = None
    n: int
    n_per_trait: list[int]
    n_common: int
    residual_covariance: bool  # Ce estimated (False: too few samples with both traits)
    path: str
    boundary: bool | None = None  # a variance at 0 or a correlation at ±1 (REML)
    converged: bool | None = None  # the fit and the three null fits of the LRTs (REML)
    method: str = "REML"
    components: list[PairComponentFit] = field(default_factory=list)
    prevalence: list[float | None] = field(default_factory=lambda: [None, None])
    case_fraction: list[float | None] = field(default_factory=lambda: [None, None])
    h2_liability: list[float | None] = field(default_factory=lambda: [None, None])
    h2_liability_se: list[float | None] = field(default_factory=lambda: [None, None])


@dataclass(frozen=True, kw_only=True)
class NotEstimable:
    """A trait that cannot be fitted, and why (constant, non-finite values, too few samples, ...)."""

    index: int  # column in the traits matrix
    name: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class FitReport:
    """Every trait's fit (or, from a bivariate fit, every pair's) plus what they share: the
    samples, markers, scaling and PCs; ``extra`` holds what the path adds (marker counts, fixed
    effects, the moments estimator's settings, ...)."""

    traits: list[TraitFit]
    n_samples: int
    n_markers_used: int | None  # None: unknown (GCTA GRMs without .grm.N.bin)
    n_markers_dropped: int
    scale: str
    pcs: int
    method: str
    extra: dict = field(default_factory=dict)
    pairs: list[PairFit] = field(default_factory=list)
    not_estimable: list[NotEstimable] = field(default_factory=list)  # traits left out, with the reason

    def to_dict(self) -> dict:
        """The report as strict JSON values (inf and NaN as null)."""
        fits = {"pairs": [pair_dict(p) for p in self.pairs]} if self.pairs else {}
        return {
            "n_samples": self.n_samples, "n_markers_used": self.n_markers_used,
            "n_markers_dropped": self.n_markers_dropped, "scale": self.scale, "pcs": self.pcs,
            "method": self.method, **self.extra,
            "traits": [trait_dict(t) for t in self.traits], **fits,
            "not_estimable": [{"name": t.name, "reason": t.reason} for t in self.not_estimable],
        }


LIABILITY_KEYS = ("prevalence", "case_fraction", "h2_liability", "h2_liability_se")


def trait_dict(fit: TraitFit) -> dict:
    """A trait's JSON object: what does not apply to the fit (``None``, or no components) left out."""
    return {k: json_ready(v) for k, v in asdict(fit).items() if not (v is None or (k == "components" and v == []))}


def pair_dict(pair: PairFit) -> dict:
    """A pair's JSON object; the liability-scale keys only when a trait is case-control; what does not apply
    to a moments fit (``None``, no components) left out."""
    case_control = any(k is not None for k in pair.prevalence)
    return {k: json_ready(v) for k, v in asdict(pair).items() if (case_control or k not in LIABILITY_KEYS)
            and not (v is None or (k == "components" and v == []))}


def json_ready(value):
    """Strict JSON has no inf/NaN: they become null (δ is infinite at h² = 0), in nested values too."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def normal_density(x: np.ndarray | float) -> np.ndarray:
    """φ(x), the standard normal density (scipy.stats.norm.pdf's formula, without importing scipy.stats:
    0.3 s of every command's start).

    Examples
    --------
    >>> round(float(normal_density(0.0)), 6)
    0.398942
    """
    return np.exp(-np.square(x) / 2.0) / np.sqrt(2.0 * np.pi)


def liability_factor(case_fraction: float, prevalence: float) -> float:
    """The factor that takes h² of a case-control trait (and its SE) from the observed scale to the
    liability scale (Lee et al. 2011, as GCTA's ``--prevalence``, its ``transform_hsq_L``).

    A disease is a liability-threshold trait: cases are the fraction K (the ``prevalence``) of the
    population whose normal liability exceeds t = Φ⁻¹(1 − K). With P the ``case_fraction`` among the
    fitted samples, h²_L = h²_O · K²(1 − K)² / (z² P(1 − P)), z = φ(t).

    Examples
    --------
    >>> round(liability_factor(0.5, 0.1), 4)
    1.052
    """
    from scipy.special import ndtri  # SciPy loads with the fits, not with every command that reports

    z = float(normal_density(-ndtri(prevalence)))
    return (prevalence * (1.0 - prevalence) / z**2) * (prevalence * (1.0 - prevalence)
                                                       / (case_fraction * (1.0 - case_fraction)))
