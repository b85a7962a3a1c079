"""A fit problem: one GRM's eigendecomposition with the traits and covariates of its samples.

Built from a store (:func:`dask_h2.api.load`) or a GCTA GRM (:func:`dask_h2.api.load_gcta`);
``fit`` gives the report, ``rotated`` the per-trait problems that plots draw from.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from .covariates import Covariates
from .eigen import Eigen
from .fit import NotEstimable, RotatedTrait, estimable, fit_all, fixed_effects, rotated_traits
from .likelihood import Method
from .report import FitReport


@dataclass(frozen=True)
class FitProblem:
    """K's ``eigen`` over n samples, ``traits`` (n, k; NaN = missing) named ``names`` (k,), ``covariates`` (n, c).

    ``subset_eigen(index)`` decomposes K[index][:, index] for a missingness pattern; the
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

    def rotated(self, pcs: int = 10) -> Iterator[RotatedTrait]:
        """Every estimable trait on its complete cases in the eigenbasis (see
        :func:`dask_h2.fit.rotated_traits`); the others as :meth:`fit` treats them."""
        return iter(estimable(list(self._rotated(pcs)))[0])

    def _rotated(self, pcs: int) -> Iterator[RotatedTrait | NotEstimable]:
        return rotated_traits(self.eigen, self.traits, self.names, pcs, self.covariates.values, self.covariates.names,
                              self.subset_eigen)

    def fit(self, method: Method = "REML", pcs: int = 10, constrain: bool = True) -> FitReport:
        """h² of every trait by ``method``; ``constrain=False`` allows h² < 0.

        A trait that cannot be fitted (:class:`~dask_h2.fit.NotEstimable`) is refused with
        :class:`InputError` when it is the only one; among several it is warned about and listed
        in the report's ``not_estimable`` while the others are fitted.
        """
        fits, refused = estimable(fit_all(self._rotated(pcs), method, constrain))
        columns = fixed_effects(self.eigen, pcs, self.covariates.values, self.covariates.names)[1]
        return FitReport(fits, self.traits.shape[0], self.n_markers_used, self.n_markers_dropped, self.scale, pcs,
                         method, {**self.extra, "fixed_effects": columns}, refused)
