"""The genetic relationship matrix K = Σ_b W_bᵀ W_b / M as a Dask reduction over marker chunks.

Each task reads one chunk of markers (all samples), computes its frequencies and
scales, standardizes to float32 and adds its float32 SYRK product to a float64
running sum; partial sums meet in a tree (``split_every``), so the work is one pass
over the data and memory is a few n × n buffers.
"""
from __future__ import annotations

from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np
from scipy.linalg.blas import ssyrk

from .standardize import Scale, centre_and_scale, marker_moments, standardize


@dataclass(frozen=True)
class Kinship:
    """K (n, n) float64 with its marker bookkeeping; ``allele_frequency`` (M,) is p = E[g]/2."""

    matrix: np.ndarray
    n_markers_used: int
    n_markers_dropped: int
    scale: str
    allele_frequency: np.ndarray


def _chunk_gram(dosage: np.ndarray, scale: Scale) -> np.ndarray:
    """Upper triangle of W_bᵀW_b (1, n, n) float64 for one chunk (m, n) of dosages."""
    centre, inverse_scale = centre_and_scale(marker_moments(dosage), scale)
    z = standardize(dosage, centre, inverse_scale)
    return ssyrk(1.0, z.T, trans=0, lower=0).astype(np.float64)[None]


def _chunk_markers(dosage: np.ndarray, scale: Scale) -> np.ndarray:
    """Per marker (m, 2): allele frequency p and 1.0 if the marker enters K."""
    centre, inverse_scale = centre_and_scale(marker_moments(dosage), scale)
    return np.stack([centre / 2.0, (inverse_scale > 0).astype(np.float64)], axis=1)


def kinship(dosage: da.Array, scale: Scale = "hwe", split_every: int = 4) -> Kinship:
    """K from int8 dosages (M markers, n samples; −1 = missing), chunked along markers only.

    Centring makes K·1 = 0 exactly in exact arithmetic; the float32 products are
    double-centred at the end so that this holds to float64 rounding too.
    """
    if dosage.numblocks[1] != 1:
        dosage = dosage.rechunk({1: -1})
    n = dosage.shape[1]
    grams = dosage.map_blocks(
        _chunk_gram, scale, dtype=np.float64, drop_axis=1, new_axis=[1, 2], meta=np.empty((0, 0, 0)),
        chunks=((1,) * dosage.numblocks[0], (n,), (n,)),
    )
    markers = dosage.map_blocks(
        _chunk_markers, scale, dtype=np.float64, chunks=(dosage.chunks[0], (2,)), meta=np.empty((0, 0))
    )
    upper, per_marker = dask.compute(grams.sum(axis=0, split_every=split_every), markers)
    used = int(per_marker[:, 1].sum())
    if used == 0:
        raise ValueError("no polymorphic marker with observed calls: K is undefined")
    matrix = np.triu(upper) + np.triu(upper, 1).T
    matrix /= used
    matrix -= matrix.mean(axis=0, keepdims=True)
    matrix -= matrix.mean(axis=1, keepdims=True)
    return Kinship(matrix, used, dosage.shape[0] - used, scale, per_marker[:, 0])
