"""Fit problems of the exact path: one GRM's eigendecomposition, or several GRMs (one per variance
component), with the traits and covariates of their samples.

Built from a store or GCTA files (:mod:`dask_h2.greml.sources`); ``fit`` gives the report,
``rotated`` the per-trait problems that plots draw from.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np

from dask_h2.checks import check, checked_arguments, one_of
from dask_h2.greml.aireml import MAX_ITER
from dask_h2.greml.bivariate import fit_bivariate
from dask_h2.greml.components import fit_components
from dask_h2.greml.likelihood import Method
from dask_h2.greml.univariate import RotatedTrait, fit_all, fixed_effects, rotated_traits
from dask_h2.kinship.eigen import Eigen
from dask_h2.results import FitReport, NotEstimable
from dask_h2.traits import Traits, case_control_traits, estimable, parse_pairs, parse_prevalence


@dataclass(frozen=True, kw_only=True)
class GRMDescription:
    """What the report says of the GRM(s) behind a fit: markers used (None: unknown) and dropped, the ``scale`` of the
    standardization, and ``extra`` (marker counts, QC, ... as the report's JSON keys)."""

    n_markers_used: int | None  # None: unknown (a GCTA GRM without its .grm.N.bin)
    n_markers_dropped: int
    scale: str
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class FitProblem:
    """K's ``eigen`` over n samples and the ``traits`` of those samples (values (n, k), covariates (n, c)).

    ``subset_eigen(index)`` decomposes K[index][:, index] for a missingness pattern and
    ``kinship_block(rows, cols)`` reads K[rows][:, cols] (two traits on different samples);
    ``grm`` describes K in the report.
    """

    eigen: Eigen
    traits: Traits
    subset_eigen: Callable[[np.ndarray], Eigen]
    grm: GRMDescription
    kinship_block: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None

    @checked_arguments()
    def rotated(self, *, pcs: int = 10) -> Iterator[RotatedTrait]:
        """Every estimable trait on its complete cases in the eigenbasis (see
        :func:`dask_h2.greml.univariate.rotated_traits`); the others as :meth:`fit` treats them."""
        return iter(estimable(list(self._rotated(pcs, self.traits.values)))[0])

    def _rotated(self, pcs: int, values: np.ndarray) -> Iterator[RotatedTrait | NotEstimable]:
        return rotated_traits(self.eigen, values, names=self.traits.names, pcs=pcs,
                              covariates=self.traits.covariates.values,
                              covariate_names=self.traits.covariates.names, subset_eigen=self.subset_eigen)

    @checked_arguments()
    def fit(self, *, method: Method = "REML", pcs: int = 10, constrain: bool = True,
            prevalence: str | float | Sequence[float | None] | None = None) -> FitReport:
        """h² of every trait by ``method`` (``"REML"`` or ``"ML"``); ``constrain=False`` allows h² < 0;
        ``prevalence`` (one K, or one per trait with None/NA for none) adds the liability scale of
        case-control traits.

        A trait that cannot be fitted (:class:`~dask_h2.results.NotEstimable`) is refused with
        :class:`~dask_h2.errors.InputError` when it is the only one; among several it is warned
        about and listed in the report's ``not_estimable`` while the others are fitted.
        """
        method = check(method, one_of("REML", "ML"), parameter="method")
        names = self.traits.names
        values, prevalence = case_control_traits(
            self.traits.values, names, prevalence=parse_prevalence(prevalence, names)
        )
        fits, refused = estimable(fit_all(self._rotated(pcs, values), method=method, constrain=constrain,
                                          traits=values, prevalence=prevalence))
        return self._report(fits, pcs=pcs, method=method, not_estimable=refused)

    @checked_arguments()
    def fit_bivariate(self, *, pairs: str = "all", pcs: int = 10, constrain: bool = True,
                      prevalence: str | float | Sequence[float | None] | None = None,
                      max_iter: int = MAX_ITER) -> FitReport:
        """Bivariate REML of the trait ``pairs`` (``T1,T2`` or ``all``; see
        :func:`dask_h2.greml.bivariate.fit_bivariate`): genetic and residual covariances, rG and its LRTs,
        in the report's ``pairs``; ``constrain=False`` lifts |rG| ≤ 1 and the variances ≥ 0."""
        names, covariates = self.traits.names, self.traits.covariates
        X, columns = fixed_effects(self.eigen, pcs, covariates=covariates.values, covariate_names=covariates.names)
        fits = fit_bivariate(self.eigen, self.traits.values, names=names, pairs=parse_pairs(pairs, names), X=X,
                             columns=columns, subset_eigen=self.subset_eigen, kinship_block=self.kinship_block,
                             constrain=constrain, prevalence=parse_prevalence(prevalence, names), max_iter=max_iter)
        return self._report([], pcs=pcs, method="REML", pairs=fits)

    def _report(self, fits: list, *, pcs: int, method: str, **results) -> FitReport:
        covariates = self.traits.covariates
        columns = fixed_effects(self.eigen, pcs, covariates=covariates.values, covariate_names=covariates.names)[1]
        return FitReport(traits=fits, n_samples=self.traits.values.shape[0], n_markers_used=self.grm.n_markers_used,
                         n_markers_dropped=self.grm.n_markers_dropped, scale=self.grm.scale, pcs=pcs, method=method,
                         extra={**self.grm.extra, "fixed_effects": columns}, **results)


@dataclass(frozen=True, kw_only=True)
class ComponentsProblem:
    """Several GRMs ``kinships`` (P, n, n), one variance component each, named ``component_names`` (P,)
    from ``n_markers`` (P,) markers each, with the ``traits`` of their samples; ``combined()`` gives
    the eigendecomposition of the K whose top eigenvectors are the PCs.

    Built from a store's partitioned GRM or GCTA GRMs (:mod:`dask_h2.greml.sources`); fitted by
    AI-REML (:mod:`dask_h2.greml.components`).
    """

    kinships: np.ndarray
    component_names: tuple[str, ...]
    n_markers: np.ndarray
    combined: Callable[[], Eigen]
    traits: Traits
    grm: GRMDescription

    @checked_arguments()
    def fit(self, *, pcs: int = 10, constrain: bool = True,
            prevalence: str | float | Sequence[float | None] | None = None, max_iter: int = MAX_ITER) -> FitReport:
        """σ²_k of every GRM and σ²_e for every trait by AI-REML (see
        :func:`dask_h2.greml.components.fit_components`)."""
        n = self.traits.values.shape[0]
        eigen = self.combined() if pcs else Eigen(values=np.zeros(n), vectors=np.empty((n, 0)))
        covariates, names = self.traits.covariates, self.traits.names
        X, columns = fixed_effects(eigen, pcs, covariates=covariates.values, covariate_names=covariates.names)
        fits, refused = estimable(fit_components(self.kinships, self.traits.values, names=names, X=X, columns=columns,
                                                 component_names=self.component_names, n_markers=self.n_markers,
                                                 constrain=constrain, prevalence=parse_prevalence(prevalence, names),
                                                 max_iter=max_iter))
        return FitReport(traits=fits, n_samples=n, n_markers_used=self.grm.n_markers_used,
                         n_markers_dropped=self.grm.n_markers_dropped, scale=self.grm.scale, pcs=pcs, method="REML",
                         extra={**self.grm.extra, "grms": list(self.component_names), "fixed_effects": columns},
                         not_estimable=refused)
