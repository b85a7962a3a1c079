"""Covariates as GCTA takes them: --covar (categorical) and --qcovar (quantitative) files.

A categorical column with L levels becomes L − 1 indicator columns (the first level in
sorted order is the reference, absorbed by the intercept), named ``column=level``.
A sample missing any covariate (NA/−9, or absent from a file) has NaN in every column
and drops out of every fit, as if its phenotypes were missing.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np

from dask_h2.errors import InputError
from dask_h2.io.tables import align_to_samples

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Covariates:
    """``values`` float64 (n, c), NaN = missing, with their column ``names`` (c,)."""

    values: np.ndarray
    names: list[str]


def indicators(labels: np.ndarray, name: str) -> tuple[np.ndarray, list[str]]:
    """L − 1 indicator columns (n, L − 1) for ``labels`` (n,) str with None = missing (rows NaN).

    Raises :class:`InputError` when fewer than two levels occur.
    """
    present = np.array([label is not None for label in labels])
    levels = sorted({label for label in labels if label is not None})
    if len(levels) < 2:
        raise InputError(f"categorical covariate {name!r}: only one level ({', '.join(levels) or 'none'}) "
                         f"among the {present.sum()} samples with a value")
    columns = np.array([[label == level for level in levels[1:]] for label in labels], dtype=np.float64)
    columns = columns.reshape(len(labels), len(levels) - 1)
    columns[~present] = np.nan
    return columns, [f"{name}={level}" for level in levels[1:]]


def check_not_constant(values: np.ndarray, name: str) -> None:
    """Raise :class:`InputError` when a quantitative covariate (n,) has an infinite value or takes one
    value on all observed samples."""
    observed = values[~np.isnan(values)]
    if not np.isfinite(observed).all():
        raise InputError(f"quantitative covariate {name!r}: non-finite value {observed[~np.isfinite(observed)][0]} "
                         "(only finite values or NA are allowed)")
    if observed.size and np.all(observed == observed[0]):
        raise InputError(f"quantitative covariate {name!r}: constant ({observed[0]:g}) over the {observed.size} "
                         "samples with a value")


def read_covariates(sample_id: np.ndarray, *, covar: str | Path | None = None,
                    qcovar: str | Path | None = None) -> Covariates:
    """The covariates of ``sample_id`` (n,) from a categorical and a quantitative file
    (FID IID c1 c2 …, optional ``FID IID`` header); quantitative columns come first, as in GCTA."""
    columns: list[np.ndarray] = [np.empty((len(sample_id), 0))]
    names: list[str] = []
    if qcovar is not None:
        values, qnames = align_to_samples(qcovar, sample_id, prefix="qcovar")
        for j, name in enumerate(qnames):
            _with_file(qcovar, check_not_constant, values[:, j], name)
        columns.append(values)
        names += qnames
    if covar is not None:
        labels, cnames = align_to_samples(covar, sample_id, numeric=False, prefix="covar")
        for j, name in enumerate(cnames):
            values, level_names = _with_file(covar, indicators, labels[:, j], name)
            columns.append(values)
            names += level_names
    return Covariates(values=np.hstack(columns), names=names)


def _with_file(path: str | Path, check: Callable[..., T], *args) -> T:
    """``check(*args)`` with the file's name in front of its error message."""
    try:
        return check(*args)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
