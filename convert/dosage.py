"""Validate genotype values and narrow them to int8 dosages (−1 = missing)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from dask_h2.errors import InputError

from .rdata_format import NA_INTEGER


def to_dosage(values: np.ndarray, missing: np.ndarray, where: str,
              sample_id: Sequence[str], variant_id: Sequence[str], first_variant: int = 0) -> np.ndarray:
    """int8 (m, n) dosages from numeric ``values`` (m markers, n samples).

    ``missing`` (m, n) marks NA calls; any other value must be 0, 1 or 2, else an
    :class:`InputError` names ``where`` and the first offending sample and marker.
    """
    bad = ~missing & (values != 0) & (values != 1) & (values != 2)
    if bad.any():
        m, i = (int(k[0]) for k in np.nonzero(bad))
        raise InputError(
            f"{where}: genotype value {values[m, i].item()!r} at sample {sample_id[i]!r}, marker "
            f"{variant_id[first_variant + m]!r}; genotypes must be 0, 1, 2 or NA"
        )
    dosage = values.astype(np.int8)
    dosage[missing] = -1
    return dosage


def r_missing(values: np.ndarray, kind: str) -> np.ndarray:
    """R's NA for an integer, logical, double or raw vector (raw has none)."""
    if kind in ("integer", "logical"):
        return values == NA_INTEGER
    if kind == "double":
        return np.isnan(values)
    return np.zeros(values.shape, dtype=bool)
