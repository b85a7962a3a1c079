"""Narrow R genotype values to int8 dosages (0, 1, 2; −1 = missing), validating them on the way."""
from __future__ import annotations

import numpy as np

from dask_h2.io.rdata_format import NA_INTEGER

GENOTYPE_KINDS = ("integer", "logical", "double", "raw")


def narrow(values: np.ndarray, kind: str, *, out: np.ndarray) -> int | None:
    """Write the int8 dosages of ``values`` (1-D, native byte order, R's ``kind``) into ``out``.

    R's NA (NaN too, for doubles) becomes −1. Returns the index of the first value
    outside {0, 1, 2, NA}, or None when all are valid (``out`` is then complete).
    """
    if kind in ("integer", "logical"):
        return _narrow_integer(values, out)
    if kind == "double":
        return _narrow_double(values, out)
    if kind == "raw":
        np.copyto(out, values.view(np.int8))
        return None if values.max(initial=0) <= 2 else int(np.argmax(values > 2))
    raise ValueError(f"cannot read genotypes from an R {kind} vector")


def _narrow_integer(values: np.ndarray, out: np.ndarray) -> int | None:
    np.copyto(out, values, casting="unsafe")  # the low byte: NA (−2³¹) gives 0
    negative = values < 0
    out -= negative.view(np.int8)
    if values.max(initial=0) <= 2 and np.count_nonzero(negative) == np.count_nonzero(values == NA_INTEGER):
        return None
    return int(np.argmax((values > 2) | (negative & (values != NA_INTEGER))))


def _narrow_double(values: np.ndarray, out: np.ndarray) -> int | None:
    missing = np.isnan(values)
    valid = missing | (values == 0) | (values == 1) | (values == 2)
    if not valid.all():
        return int(np.argmin(valid))
    np.copyto(out, np.where(missing, -1, values), casting="unsafe")
    return None
