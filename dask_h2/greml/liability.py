"""h² of a case-control trait on the liability scale (Lee et al. 2011, as GCTA's ``--prevalence``).

A disease is a liability-threshold trait: cases are the fraction K (the prevalence) of the
population whose normal liability exceeds t = Φ⁻¹(1 − K). An LMM fitted to the 0/1 trait
gives h² on the observed scale; with P the proportion of cases among the fitted samples,

    h²_L = h²_O · K²(1 − K)² / (z² P(1 − P)),  z = φ(t),

and its SE is the observed SE times the same factor (GCTA's ``transform_hsq_L``).
A trait is case-control when its observed values are {0, 1} (1 = case) or, PLINK's coding,
{1, 2} (2 = case), where 0 is then missing as well as −9/NA.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.stats

from dask_h2.errors import InputError
from dask_h2.checks import OptionError, check


def liability_factor(case_fraction: float, prevalence: float) -> float:
    """K²(1 − K)² / (φ(Φ⁻¹(1 − K))² P(1 − P)): multiplies h² (and its SE) on the observed scale."""
    z = float(scipy.stats.norm.pdf(scipy.stats.norm.isf(prevalence)))
    return (prevalence * (1.0 - prevalence) / z**2) * (prevalence * (1.0 - prevalence)
                                                       / (case_fraction * (1.0 - case_fraction)))


def parse_prevalence(text: str | float | Sequence[float | None] | None, names: Sequence[str]) -> list[float | None]:
    """One prevalence (or None) per trait from ``--prevalence``: a single K for every trait, or
    one per trait (comma-separated, ``NA`` for a quantitative trait); each K lies in (0, 1)."""
    if text is None:
        return [None] * len(names)
    if isinstance(text, str):
        items: list = text.split(",")
    elif isinstance(text, (int, float)):
        items = [text]
    else:
        items = list(text)
    values = [check("--prevalence", prevalence_value, item) for item in items]
    if len(values) == 1:
        return values * len(names)
    if len(values) != len(names):
        raise InputError(f"--prevalence {text}: {len(values)} values for {len(names)} traits "
                         f"({', '.join(map(str, names))}); give one for all or one per trait (NA for none)")
    return values


def prevalence_value(item: str | float | None) -> float | None:
    """One item of ``--prevalence``: None for ``NA`` (or empty), else a number in (0, 1)."""
    if item is None or (isinstance(item, str) and item.strip().upper() in ("NA", "")):
        return None
    try:
        value = float(item)
    except (TypeError, ValueError):
        raise OptionError(f"{item!r} is not a number") from None
    if not 0.0 < value < 1.0:
        raise OptionError(f"a prevalence must lie strictly between 0 and 1, not {value:g}")
    return value


def prevalence_option(text: str) -> str:
    """``--prevalence`` checked item by item (its count is checked against the traits by :func:`parse_prevalence`)."""
    for item in text.split(","):
        prevalence_value(item)
    return text


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
    raise InputError(f"trait {name}: --prevalence needs a case-control trait (0/1, or 1/2 with 0/-9 missing); "
                     f"it has {len(observed)} distinct values ({shown})")


def case_fraction(values: np.ndarray) -> float:
    """P, the proportion of cases (the larger of the two values) among observed ``values`` (n,)."""
    observed = values[~np.isnan(values)]
    return float(np.mean(observed == observed.max()))
