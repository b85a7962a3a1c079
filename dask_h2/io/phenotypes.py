"""PLINK-style phenotype files (``--pheno FILE --mpheno k``) and PLINK's coding of case-control traits."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dask_h2.errors import InputError
from dask_h2.checks import check_names
from dask_h2.io.tables import align_to_samples


def read_phenotypes(
    path: str | Path, sample_id: np.ndarray, *, mpheno: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(traits (n, k) float64 in the order of ``sample_id``, NaN = missing, names (k,)) from ``path``.

    The file is FID IID y1 y2 … (header optional, −9/NA missing); ``mpheno`` keeps only
    the k-th trait (1-based). Rows are matched by IID alone (the FID is not compared),
    as for --covar/--qcovar (:func:`dask_h2.io.tables.align_to_samples`): samples absent
    from the file are missing, IIDs absent from the genotypes are ignored (as PLINK and
    GCTA ignore unknown individuals), and a file matching no sample or naming an IID
    twice is an error. Trait names must be unique and usable in file names; each trait
    follows PLINK's case-control coding (:func:`plink_coding`).
    """
    traits, names = align_to_samples(path, sample_id, prefix="pheno")
    check_names(names, where=str(path), what="trait name")
    if mpheno is not None:
        if not 1 <= mpheno <= len(names):
            raise InputError(f"{path}: --mpheno {mpheno}, but the file has {len(names)} phenotype column(s)")
        traits, names = traits[:, mpheno - 1:mpheno], names[mpheno - 1:mpheno]
    return plink_coding(traits), np.array(names, dtype=object)


def plink_coding(traits: np.ndarray) -> np.ndarray:
    """``traits`` (n, k) with PLINK's case-control coding applied: in a trait whose observed values
    are 1 and 2 (2 = case), with or without 0, a 0 is missing too. Other traits (0/1 case-control,
    quantitative) are unchanged."""
    traits = np.array(traits, dtype=np.float64, copy=True)
    for column in traits.T:
        observed = set(np.unique(column[~np.isnan(column)]).tolist())
        if {1.0, 2.0} <= observed <= {0.0, 1.0, 2.0}:
            column[column == 0.0] = np.nan
    return traits
