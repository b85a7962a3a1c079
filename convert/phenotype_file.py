"""PLINK-style phenotype files (``--pheno FILE --mpheno k``) for inputs without phenotypes of their own."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dask_h2.errors import InputError
from dask_h2.id_table import read_id_table


def read_phenotypes(path: str | Path, sample_id: np.ndarray, mpheno: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(traits (n, k) float64 in the order of ``sample_id``, NaN = missing, names (k,)) from ``path``.

    The file is FID IID y1 y2 … (header optional, −9/NA missing); ``mpheno`` keeps only
    the k-th trait (1-based). Samples absent from the file are missing; an IID that
    matches no sample is an error.
    """
    ids, values, names = read_id_table(path, prefix="pheno")
    if mpheno is not None:
        if not 1 <= mpheno <= len(names):
            raise InputError(f"{path}: --mpheno {mpheno}, but the file has {len(names)} phenotype column(s)")
        values, names = values[:, mpheno - 1:mpheno], names[mpheno - 1:mpheno]
    position = {iid: i for i, iid in enumerate(sample_id)}
    found = np.array([position.get(iid, -1) for iid in ids], dtype=np.int64)
    if (found < 0).any():
        unknown = ids[found < 0]
        raise InputError(f"{path}: {unknown.size} IID(s) match no sample of the genotypes (first: {unknown[0]!r})")
    if len(np.unique(found)) < found.size:
        raise InputError(f"{path}: an IID appears on more than one line")
    traits = np.full((len(sample_id), len(names)), np.nan)
    traits[found] = values
    return traits, np.array(names, dtype=object)
