"""Fit problems: one GRM's eigendecomposition, or several GRMs, with the traits and covariates of their samples.

Built from a store (:func:`dask_h2.api.load`) or a GCTA GRM (:func:`dask_h2.api.load_gcta`);
``fit`` gives the report, ``rotated`` the per-trait problems that plots draw from.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np

from dask_h2.greml.aireml import MAX_ITER
from dask_h2.greml.bivariate import fit_bivariate, parse_pairs
from dask_h2.io.covariates import Covariates
from dask_h2.kinship.eigen import Eigen
from dask_h2.greml.univariate import NotEstimable, RotatedTrait, case_control_traits, estimable, fit_all, fixed_effects, rotated_traits
from dask_h2.greml.liability import parse_prevalence
from dask_h2.greml.likelihood import Method
from dask_h2.greml.components import fit_several
from dask_h2.checks import check, one_of
from dask_h2.io.reports import FitReport


@dataclass(frozen=True)
class FitProblem:
    """K's ``eigen`` over n samples, ``traits`` (n, k; NaN = missing) named ``names`` (k,), ``covariates`` (n, c).

    ``subset_eigen(index)`` decomposes K[index][:, index] for a missingness pattern and
    ``kinship_block(rows, cols)`` reads K[rows][:, cols] (two traits on different samples); the
    marker counts, ``scale`` and ``extra`` describe the GRM in the report.
    """

    eigen: Eigen
    traits: np.ndarray
    names: np.ndarray
    covariates: Covariates
    subset_eigen: Callable[[np.ndarray], Eigen]
    n_markers_used: int
    n_markers_dropped: int
    scale: str
    extra: dict = field(default_factory=dict)
    kinship_block: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None  # K[rows][:, cols]

    def rotated(self, pcs: int = 10) -> Iterator[RotatedTrait]:
        """Every estimable trait on its complete cases in the eigenbasis (see
        :func:`dask_h2.greml.univariate.rotated_traits`); the others as :meth:`fit` treats them."""
        return iter(estimable(list(self._rotated(pcs, self.traits)))[0])

    def _rotated(self, pcs: int, traits: np.ndarray) -> Iterator[RotatedTrait | NotEstimable]:
        return rotated_traits(self.eigen, traits, self.names, pcs, self.covariates.values, self.covariates.names,
                              self.subset_eigen)

    def fit(self, method: Method = "REML", pcs: int = 10, constrain: bool = True,
            prevalence: str | float | Sequence[float | None] | None = None) -> FitReport:
        """h² of every trait by ``method``; ``constrain=False`` allows h² < 0; ``prevalence``
        (one K, or one per trait with None/NA for none) adds the liability scale of case-control traits.

        A trait that cannot be fitted (:class:`~dask_h2.greml.univariate.NotEstimable`) is refused with
        :class:`InputError` when it is the only one; among several it is warned about and listed
        in the report's ``not_estimable`` while the others are fitted.
        """
        method = check("--method", one_of("REML", "ML"), method)
        traits, prevalence = case_control_traits(self.traits, self.names, parse_prevalence(prevalence, self.names))
        fits, refused = estimable(fit_all(self._rotated(pcs, traits), method, constrain, traits, prevalence))
        columns = fixed_effects(self.eigen, pcs, self.covariates.values, self.covariates.names)[1]
        return FitReport(fits, self.traits.shape[0], self.n_markers_used, self.n_markers_dropped, self.scale, pcs,
                         method, {**self.extra, "fixed_effects": columns}, not_estimable=refused)

    def fit_bivariate(self, pairs: str = "all", pcs: int = 10, constrain: bool = True,
                      prevalence: str | float | Sequence[float | None] | None = None,
                      max_iter: int = MAX_ITER) -> FitReport:
        """Bivariate REML of the trait ``pairs`` (``T1,T2`` or ``all``; see :func:`dask_h2.greml.bivariate.fit_bivariate`):
        genetic and residual covariances, rG and its LRTs, in the report's ``pairs``; ``constrain=False``
        lifts |rG| ≤ 1 and the variances ≥ 0."""
        X, columns = fixed_effects(self.eigen, pcs, self.covariates.values, self.covariates.names)
        fits = fit_bivariate(self.eigen, self.traits, self.names, parse_pairs(pairs, self.names), X, columns,
                             self.subset_eigen, self.kinship_block, constrain,
                             parse_prevalence(prevalence, self.names), max_iter)
        return FitReport([], self.traits.shape[0], self.n_markers_used, self.n_markers_dropped, self.scale, pcs,
                         "REML", {**self.extra, "fixed_effects": columns}, fits)


@dataclass(frozen=True)
class SeveralGRMProblem:
    """Several GRMs ``kinships`` (P, n, n) named ``component_names`` (P,) from ``n_markers`` (P,)
    markers each, with the ``traits`` (n, k) named ``names`` and ``covariates`` of their samples;
    ``combined()`` gives the eigendecomposition of the K whose top eigenvectors are the PCs.

    Built from a store (:func:`dask_h2.greml.sources.load_partitioned`) or GCTA GRMs
    (:func:`dask_h2.greml.sources.load_mgrm_gcta`); fitted by AI-REML (:mod:`dask_h2.greml.components`).
    """

    kinships: np.ndarray
    component_names: tuple[str, ...]
    n_markers: np.ndarray
    combined: Callable[[], Eigen]
    traits: np.ndarray
    names: np.ndarray
    covariates: Covariates
    n_markers_dropped: int
    scale: str
    extra: dict = field(default_factory=dict)

    def fit(self, pcs: int = 10, constrain: bool = True,
            prevalence: str | float | Sequence[float | None] | None = None, max_iter: int = MAX_ITER) -> FitReport:
        """σ²_k of every GRM and σ²_e for every trait by AI-REML (see :func:`dask_h2.greml.components.fit_several`)."""
        n = self.traits.shape[0]
        eigen = self.combined() if pcs else Eigen(np.zeros(n), np.empty((n, 0)))
        X, columns = fixed_effects(eigen, pcs, self.covariates.values, self.covariates.names)
        fits, refused = estimable(fit_several(self.kinships, self.traits, self.names, X, columns, self.component_names,
                                              self.n_markers, constrain, parse_prevalence(prevalence, self.names),
                                              max_iter))
        return FitReport(fits, n, int(np.sum(self.n_markers)), self.n_markers_dropped, self.scale, pcs, "REML",
                         {**self.extra, "grms": list(self.component_names), "fixed_effects": columns},
                         not_estimable=refused)
