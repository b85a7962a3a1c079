"""Traits as every path fits them: a store's traits and covariates over the samples analysed, the
design matrix of the fixed effects, the missingness patterns that decide which samples each trait
is fitted on, the screening of traits that cannot be fitted, and case-control traits' coding."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence, TypeVar

import numpy as np
import zarr

from dask_h2.checks import check, check_names, prevalence_value
from dask_h2.errors import NAMED, InputError, ParameterError
from dask_h2.io.covariates import Covariates, read_covariates
from dask_h2.results import NotEstimable
from dask_h2.store import open_store, read_strings


@dataclass(frozen=True, kw_only=True)
class Traits:
    """The traits of the samples analysed: ``values`` (n, k) float64 (NaN = missing) named ``names`` (k,),
    the ``covariates`` (n, c) of the same samples, and ``n_samples_removed`` of the store's samples
    left out of the analysis (``--keep``/``--remove``)."""

    values: np.ndarray
    names: np.ndarray
    covariates: Covariates
    n_samples_removed: int


def store_traits(store: str | Path, samples: np.ndarray, *, covar: str | Path | None = None,
                 qcovar: str | Path | None = None, traits: tuple[np.ndarray, np.ndarray] | None = None) -> Traits:
    """The :class:`Traits` of the store's ``samples`` (their positions, ascending), with the covariates
    of the ``covar`` (categorical) and ``qcovar`` (quantitative) files; ``traits`` is what
    :func:`read_traits` gave when the caller checked them before its work."""
    root = open_store(store)
    values, names = traits if traits is not None else read_traits(root, store)
    sample_id = read_strings(root, "sample_id")
    return Traits(
        values=values[samples],
        names=names,
        covariates=read_covariates(sample_id[samples], covar=covar, qcovar=qcovar),
        n_samples_removed=int(sample_id.size - np.asarray(values[samples]).shape[0]),
    )


RANK_TOLERANCE = 1e-8  # a column of X whose part outside the previous columns is this small (relative) depends on them


def design_matrix(principal_components: np.ndarray, covariates: np.ndarray | None = None,
                  *, covariate_names: Sequence[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """X (n, 1 + k + c) and its column names: intercept, the PCs (n, k), then the covariates (n, c;
    NaN = missing, an infinite value is an :class:`InputError`)."""
    n, pcs = principal_components.shape
    columns = [np.ones((n, 1)), principal_components]
    names = ["intercept"] + [f"PC{i + 1}" for i in range(pcs)]
    if covariates is not None:
        covariates = np.asarray(covariates, dtype=np.float64).reshape(n, -1)
        if np.isinf(covariates).any():
            row, column = np.argwhere(np.isinf(covariates))[0]
            raise InputError(f"covariates: infinite value in column {column + 1}, sample {row + 1}")
        columns.append(covariates)
        names += list(covariate_names or [f"covariate{j + 1}" for j in range(covariates.shape[1])])
    return np.hstack(columns), names


def missingness_patterns(traits: np.ndarray, X: np.ndarray) -> dict[bytes, list[int]]:
    """Traits (n, k; NaN = missing) grouped by the samples on which they and every column of X
    (n, p; NaN = missing) are observed: {bool mask (n,) as bytes: [trait columns]}, in column order."""
    covariates_observed = ~np.isnan(X).any(axis=1)
    patterns: dict[bytes, list[int]] = {}
    for j in range(traits.shape[1]):
        patterns.setdefault((covariates_observed & ~np.isnan(traits[:, j])).tobytes(), []).append(j)
    return patterns


def check_full_rank(X: np.ndarray, names: Sequence[str], *, what: str) -> None:
    """Raise :class:`InputError` naming every column of X (n, p) that depends on the columns before it.

    Column j is dependent when |R_jj| of the unpivoted QR, the norm of its part outside
    the span of columns 0..j−1, is at most ``RANK_TOLERANCE`` times its norm.
    """
    r = np.linalg.qr(X, mode="r")
    norms = np.linalg.norm(X, axis=0)
    dependent = [names[j] for j in range(X.shape[1]) if j >= r.shape[0] or abs(r[j, j]) <= RANK_TOLERANCE * norms[j]]
    if dependent:
        raise InputError(f"{what}: fixed effects are rank deficient: {', '.join(dependent)} "
                         f"{'is' if len(dependent) == 1 else 'are'} constant or a linear combination of the "
                         f"columns before (order: {', '.join(names)})")


def complete_cases(traits: np.ndarray, names: Sequence[str], *, X: np.ndarray,
                   columns: Sequence[str]) -> Iterator[tuple[np.ndarray, list[int]]]:
    """(observed (n,) bool, trait columns) of each :func:`missingness_patterns` group of the traits
    (n, k), checked by :func:`check_complete_cases` (raises :class:`InputError`)."""
    for key, members in missingness_patterns(traits, X).items():
        observed = np.frombuffer(key, dtype=bool)
        check_complete_cases(observed, names[members[0]], X=X, columns=columns)
        yield observed, members


def check_complete_cases(observed: np.ndarray, name: str, *, X: np.ndarray, columns: Sequence[str]) -> str:
    """Raise :class:`InputError` unless the samples ``observed`` (n,) of trait ``name`` outnumber the
    fixed effects X (n, p) named ``columns`` and X is of full rank on them; returns how the error
    messages name these samples."""
    what = f"trait {name} ({observed.sum()} samples with the trait and every covariate)"
    if observed.sum() <= X.shape[1] + 1:
        raise InputError(f"{what}: too few for {X.shape[1]} fixed effects")
    check_full_rank(X[observed], columns, what=what)
    return what


def collinear_pair(y1: np.ndarray, y2: np.ndarray, *, X: np.ndarray, tolerance: float = 1e-9) -> float | None:
    """The slope b when, after the fixed effects, ``y2`` = b·``y1`` exactly (within ``tolerance`` of its
    variance) on the samples where both traits and X (n, p) are observed, else None.

    Two such traits (a copy, ``2a + 3``, ``-a/2``) have rG = sign(b) and rE = sign(b) by construction:
    no bivariate model separates their genetic and residual parts.

    Examples
    --------
    >>> a = np.arange(10.0) ** 1.5
    >>> collinear_pair(a, 3 - a / 2, X=np.ones((10, 1)))
    -0.5
    >>> collinear_pair(a, a ** 2, X=np.ones((10, 1))) is None
    True
    """
    both = ~(np.isnan(y1) | np.isnan(y2) | np.isnan(X).any(axis=1))
    if both.sum() <= X.shape[1] + 1:
        return None
    Xb = X[both]
    r1, r2 = (y - Xb @ np.linalg.lstsq(Xb, y, rcond=None)[0] for y in (y1[both], y2[both]))
    if r1 @ r1 == 0.0 or r2 @ r2 == 0.0:
        return None
    slope = float(r1 @ r2 / (r1 @ r1))
    residual = r2 - slope * r1
    return round(slope, 12) if residual @ residual <= tolerance * (r2 @ r2) else None


def screen_traits(traits: np.ndarray, names: Sequence[str], *, X: np.ndarray) -> tuple[list[int], list[NotEstimable]]:
    """The columns of ``traits`` (n, k; NaN = missing) that can be fitted with the fixed effects
    ``X`` (n, p; NaN = missing), and the others as :class:`NotEstimable` (:func:`degenerate_values`,
    or values that X fits exactly); the traits observed on the same samples share one least-squares fit."""
    n_candidates = int((~np.isnan(X).any(axis=1)).sum())
    reasons: dict[int, str | None] = {}
    for key, members in missingness_patterns(traits, X).items():
        observed = np.frombuffer(key, dtype=bool)
        values, fixed = traits[observed][:, members], X[observed]
        reasons.update({j: degenerate_values(values[:, i], n_fixed=fixed.shape[1], n_candidates=n_candidates)
                        for i, j in enumerate(members)})
        fitted = [i for i, j in enumerate(members) if reasons[j] is None]
        if fitted:
            y = values[:, fitted]
            residual = y - fixed @ np.linalg.lstsq(fixed, y, rcond=None)[0]
            exact = np.linalg.norm(residual, axis=0) <= RANK_TOLERANCE * np.linalg.norm(y, axis=0)
            reasons.update({members[i]: f"fitted exactly by the fixed effects over its {y.shape[0]} samples: no "
                                        "variance to partition" for i in np.asarray(fitted)[exact]})
    kept = [j for j in range(traits.shape[1]) if reasons[j] is None]
    refused = [NotEstimable(index=j, name=str(names[j]), reason=f"trait {names[j]}: {reasons[j]}")
               for j in range(traits.shape[1]) if reasons[j] is not None]
    return kept, refused


def degenerate_values(y: np.ndarray, *, n_fixed: int, n_candidates: int) -> str | None:
    """Why the observed values ``y`` (r,) of a trait with ``n_fixed`` fixed effects cannot be fitted, or
    None: a non-finite value, fewer than ``n_fixed`` + 2 samples (of the ``n_candidates`` with every
    covariate) or a constant. (:func:`screen_traits` also refuses values that the fixed effects fit
    exactly.)"""
    if np.isinf(y).any():
        return f"non-finite value {y[np.isinf(y)][0]} (only finite values or NA are allowed)"
    if y.size <= n_fixed + 1:
        return (f"{y.size} of {n_candidates} samples observed, too few for {n_fixed} fixed effects "
                f"(at least {n_fixed + 2} needed)")
    if np.all(y == y[0]):
        return f"constant ({y[0]:g}) over its {y.size} samples: no variance to partition"
    return None


def case_control_traits(traits: np.ndarray, names: Sequence[str],
                        *, prevalence: Sequence[float | None] | None) -> tuple[np.ndarray, list[float | None]]:
    """``traits`` (n, k) with each one that has a prevalence in its case-control coding
    (:func:`case_control_coding`), and the prevalences as a list (k,)."""
    traits = np.asarray(traits, dtype=np.float64).reshape(len(traits), -1)
    prevalence = list(prevalence) if prevalence is not None else [None] * traits.shape[1]
    coded = [case_control_coding(traits[:, j], names[j]) if prevalence[j] is not None else traits[:, j]
             for j in range(traits.shape[1])]
    return np.column_stack(coded) if coded else traits, prevalence


T = TypeVar("T")


def estimable(results: Sequence[T | NotEstimable]) -> tuple[list[T], list[NotEstimable]]:
    """(the results that are not :class:`NotEstimable`, those that are). Raises :class:`InputError`
    when nothing is estimable; warns (one line each) about the traits left out otherwise."""
    kept = [r for r in results if not isinstance(r, NotEstimable)]
    refused = [r for r in results if isinstance(r, NotEstimable)]
    if not kept:
        reasons = [r.reason for r in refused] or ["no traits to fit"]
        raise InputError(reasons[0] if len(reasons) == 1 else f"no trait can be fitted: {'; '.join(reasons)}")
    for r in refused:
        warnings.warn(f"{r.reason}; not estimable, the other traits are fitted", RuntimeWarning, stacklevel=3)
    return kept, refused


def parse_prevalence(text: str | float | Sequence[float | None] | None, names: Sequence[str]) -> list[float | None]:
    """One prevalence (or None) per trait from ``text``: a single K for every trait, or one per trait
    (comma-separated, or a sequence; ``NA`` or None for a quantitative trait); each K lies in (0, 1)."""
    if text is None:
        return [None] * len(names)
    if isinstance(text, str):
        items: list = text.split(",")
    elif isinstance(text, (int, float)):
        items = [text]
    else:
        items = list(text)
    values = [check(item, prevalence_value, parameter="prevalence") for item in items]
    if len(values) == 1:
        return values * len(names)
    if len(values) != len(names):
        raise ParameterError(
            f"{{prevalence}}: {len(values)} values for {len(names)} traits ({', '.join(map(str, names))});"
            " give one for all or one per trait (NA for none)",
            prevalence=text,
        )
    return values


def case_control_coding(values: np.ndarray, name: str) -> np.ndarray:
    """The trait (n,) as fitted for a liability-scale h²: 0/1 unchanged, PLINK's 1/2 with 0 as missing.

    Raises :class:`InputError` when the observed values are not those of a case-control trait.
    """
    values = np.asarray(values, dtype=np.float64)
    observed = set(np.unique(values[~np.isnan(values)]).tolist())
    if observed == {0.0, 1.0}:
        return values
    if {1.0, 2.0} <= observed <= {0.0, 1.0, 2.0}:
        return np.where(values == 0.0, np.nan, values)
    shown = ", ".join(f"{v:g}" for v in sorted(observed)[:5]) + (", ..." if len(observed) > 5 else "")
    raise ParameterError(f"trait {name}: {{prevalence}} needs a case-control trait (0/1, or 1/2 with 0/-9 missing); "
                         f"it has {len(observed)} distinct values ({shown})", prevalence=NAMED)


def case_fraction(values: np.ndarray) -> float:
    """P, the proportion of cases (the larger of the two values) among observed ``values`` (n,)."""
    observed = values[~np.isnan(values)]
    return float(np.mean(observed == observed.max()))


def read_traits(root: zarr.Group, store: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(traits (n, k) float64 over all the store's samples, NaN = missing, names (k,)): raises
    :class:`InputError` when there are none or a name is repeated or cannot be part of a file name."""
    names = read_strings(root, "trait_name")
    if names.size == 0:
        raise InputError(f"{store}: the store has no phenotypes to fit")
    check_names(names, where=f"{store}: trait_name", what="trait name")
    return root["traits"][:], names


def parse_pairs(spec: str, names: Sequence[str]) -> list[tuple[int, int]]:
    """The trait pairs of ``--bivariate T1,T2`` or ``--bivariate all`` (every pair), as column indices."""
    names = [str(name) for name in names]
    if spec == "all":
        if len(names) < 2:
            raise ParameterError(
                f"{{bivariate}}: needs at least two traits, there is {len(names)} ({', '.join(names)})", bivariate=spec
            )
        return [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))]
    parts = [part.strip() for part in spec.split(",")]
    if len(parts) != 2:
        raise ParameterError("{bivariate}: expected two trait names T1,T2 (or all)", bivariate=spec)
    missing = [part for part in parts if part not in names]
    if missing:
        raise ParameterError(f"{{bivariate}}: no trait named {missing[0]!r} (traits: {', '.join(names)})",
                             bivariate=spec)
    if parts[0] == parts[1]:
        raise ParameterError("{bivariate}: the same trait twice; give two different traits", bivariate=spec)
    return [(names.index(parts[0]), names.index(parts[1]))]
