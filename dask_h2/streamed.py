"""Products of one chunk of standardized genotypes with thin matrices (numpy and BLAS, no Dask).

A chunk is int8 dosages (m markers, n samples). Its standardized rows W (m, n) float32 are
never held whole: W is standardized ``SAMPLE_TILE`` samples at a time into one reused
buffer that stays in cache, and each tile feeds single-precision GEMMs:

- :func:`left_products`: W R (m, w) for a thin R (n, w) (and, optionally, the squares of
  W summed over the samples of each of P sample masks (m, P));
- :func:`right_products`: Wᵀ over groups of rows, Σ_{m∈g} w_m L[m] (n, v) per group g, for
  a thin L (m, v), in a second sweep over the tiles.

Each GEMM reads its operands in the layout BLAS wants them (no copies): tiles are
C-ordered (m, t), R and the outputs are C-ordered (n, ·), so a tile of R or of an output is
one contiguous block.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
from scipy.linalg.blas import sgemm

from .standardize import standardize

SAMPLE_TILE = 2048  # samples standardized at a time: an m × 2048 float32 tile of a 335-marker chunk is 2.7 MB


def sample_tiles(n_samples: int, tile: int = SAMPLE_TILE) -> Iterator[tuple[int, int]]:
    """(start, stop) of consecutive sample tiles."""
    for start in range(0, n_samples, tile):
        yield start, min(start + tile, n_samples)


def _tiles(dosage: np.ndarray, centre: np.ndarray, inverse_scale: np.ndarray,
           tile: int) -> Iterator[tuple[int, int, np.ndarray]]:
    """(start, stop, W[:, start:stop]) with W the standardized chunk, tile by tile in one buffer."""
    m, n = dosage.shape
    buffer = np.empty(m * min(tile, n), dtype=np.float32)
    for start, stop in sample_tiles(n, tile):
        out = buffer[: m * (stop - start)].reshape(m, stop - start)
        yield start, stop, standardize(dosage[:, start:stop], centre, inverse_scale, out=out)


def left_products(dosage: np.ndarray, centre: np.ndarray, inverse_scale: np.ndarray, right: np.ndarray,
                  masks: np.ndarray | None = None, tile: int = SAMPLE_TILE) -> tuple[np.ndarray, np.ndarray | None]:
    """W R (m, w) float32 of the standardized chunk W (m, n) and ``right`` R (n, w) float32 C-ordered;
    with ``masks`` (n, P) float32 of 0/1, also Σ_i mask_ip w_mi² (m, P) float64."""
    m, w = dosage.shape[0], right.shape[1]
    product = np.zeros((m, w), dtype=np.float32, order="F")
    squares = None if masks is None else np.zeros((m, masks.shape[1]))
    for start, stop, z in _tiles(dosage, centre, inverse_scale, tile):
        if w and m:
            sgemm(1.0, z.T, right[start:stop].T, beta=1.0, c=product, trans_a=1, trans_b=1, overwrite_c=1)
        if squares is not None:
            squares += np.square(z) @ masks[start:stop]
    return np.ascontiguousarray(product), squares


def right_products(dosage: np.ndarray, centre: np.ndarray, inverse_scale: np.ndarray, left: np.ndarray,
                   groups: Sequence[slice], tile: int = SAMPLE_TILE) -> list[np.ndarray]:
    """Σ_{m∈g} w_m L[m] (n, v) float32 for each contiguous row range g of ``groups``, with
    ``left`` L (m, v) and W (m, n) the standardized chunk."""
    n, v = dosage.shape[1], left.shape[1]
    parts = [np.asfortranarray(left[rows]) for rows in groups]
    outputs = [np.zeros((n, v), dtype=np.float32) for _ in groups]
    for start, stop, z in _tiles(dosage, centre, inverse_scale, tile):
        for rows, part, out in zip(groups, parts, outputs):
            if rows.stop > rows.start:
                sgemm(1.0, part, z[rows].T, beta=1.0, c=out[start:stop].T, trans_a=1, trans_b=1, overwrite_c=1)
    return outputs
