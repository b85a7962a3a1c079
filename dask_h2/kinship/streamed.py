"""Products of one chunk of standardized genotypes with thin matrices (numpy and BLAS, no Dask).

A chunk is int8 dosages (m markers, n samples). Its standardized rows W (m, n) float32 are
never held whole: W is standardized ``ROW_BLOCK`` markers × ``SAMPLE_TILE`` samples at a time
into one reused buffer that stays in cache, and each tile feeds single-precision GEMMs:

- :func:`left_products`: W R (m, w) for a thin R (n, w) (and, optionally, the squares of W
  summed over the samples of each class of samples (m, C));
- :func:`right_products`: Wᵀ over groups of rows, Σ_{m∈g} w_m L[m] (n, v) per group g, for
  a thin L (m, v), in a second sweep over the tiles.

Each GEMM reads its operands in place (no copies): tiles are C-ordered (m, t), R and the
outputs are C-ordered (n, ·), so a tile of R or of an output is one contiguous block. The
products are numpy's: its BLAS calls release the GIL, so that the tasks of a pass on several
threads multiply at once (scipy.linalg.blas's hold it: two threads of its GEMMs ran as one).
Measured with OpenBLAS single-threaded (256 × 2048 tiles, 20 columns): W R as a (m, w) product
added into the output, 0.83 ns per genotype (1.42 as (Rᵀ Wᵀ)ᵀ), and a tile of Wᵀ L as a (t, v)
product into one buffer, then added, 1.0.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from dask_h2.kinship.standardize import standardize

SAMPLE_TILE = 2048  # samples standardized at a time
ROW_BLOCK = 256  # markers standardized at a time: a 256 × 2048 float32 tile is 2 MiB, in cache


def sample_tiles(n_samples: int, tile: int = SAMPLE_TILE) -> Iterator[tuple[int, int]]:
    """(start, stop) of consecutive sample tiles."""
    for start in range(0, n_samples, tile):
        yield start, min(start + tile, n_samples)


def _tiles(dosage: np.ndarray, centre: np.ndarray, inverse_scale: np.ndarray, rows: slice, tile: int,
           squares: tuple[np.ndarray, np.ndarray] | None = None,
           order: np.ndarray | None = None) -> Iterator[tuple[slice, int, int, np.ndarray]]:
    """(row block, start, stop, W[row block, start:stop]) over the ``rows`` of the standardized chunk W,
    ``ROW_BLOCK`` rows and ``tile`` samples at a time in one buffer; ``squares`` = (sample class (n,),
    sums (m, C)) also adds Σ w² per class into the sums; ``order``: W's rows are those of ``dosage``."""
    n = dosage.shape[1]
    order = np.arange(dosage.shape[0]) if order is None else order
    buffer = np.empty(min(ROW_BLOCK, rows.stop - rows.start) * min(tile, n), dtype=np.float32)
    for first in range(rows.start, rows.stop, ROW_BLOCK):
        block = slice(first, min(first + ROW_BLOCK, rows.stop))
        block_squares = None if squares is None else (squares[0], squares[1][block])
        for start, stop in sample_tiles(n, tile):
            out = buffer[: (block.stop - block.start) * (stop - start)].reshape(block.stop - block.start, stop - start)
            yield (
                block,
                start,
                stop,
                standardize(
                    dosage,
                    centre=centre[block],
                    inverse_scale=inverse_scale[block],
                    out=out,
                    columns=(start, stop),
                    squares=block_squares,
                    rows=order[block],
                ),
            )


def left_products(dosage: np.ndarray, *, centre: np.ndarray, inverse_scale: np.ndarray, right: np.ndarray,
                  sample_class: np.ndarray | None = None, n_classes: int = 0, square_right: np.ndarray | None = None,
                  tile: int = SAMPLE_TILE, order: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """W R (m, w) float32 of the standardized chunk W (m, n) and ``right`` R (n, w) float32 C-ordered,
    followed by (W∘W) S (m, s) when ``square_right`` S (n, s) float32 C-ordered is given; with
    ``sample_class`` (n,) int in [0, n_classes), also Σ w_mi² over each class (m, n_classes) float64.
    ``order`` (m,) int: W's rows are those rows of ``dosage``, in that order (default: all of it)."""
    m, w = (dosage.shape[0] if order is None else order.size), right.shape[1]
    s = 0 if square_right is None else square_right.shape[1]
    product = np.zeros((m, w), dtype=np.float32)
    weighted = np.zeros((m, s), dtype=np.float32)
    sums = None if sample_class is None else np.zeros((m, n_classes))
    squares = None if sums is None else (sample_class, sums)
    for block, start, stop, z in _tiles(dosage, centre, inverse_scale, slice(0, m), tile, squares, order):
        if w:
            product[block] += z @ right[start:stop]
        if s:
            weighted[block] += np.square(z) @ square_right[start:stop]
    return (np.hstack([product, weighted]) if s else product), sums


def right_products(dosage: np.ndarray, *, centre: np.ndarray, inverse_scale: np.ndarray, left: np.ndarray,
                   groups: Sequence[slice], tile: int = SAMPLE_TILE, outputs: Sequence[np.ndarray] | None = None,
                   squares: Sequence[np.ndarray] | None = None, order: np.ndarray | None = None) -> list[np.ndarray]:
    """Σ_{m∈g} w_m L[m] (n, v) float32 for each contiguous row range g of ``groups``, with
    ``left`` L (m, v) and W (m, n) the standardized chunk; added into ``outputs`` (one (n, v)
    float32 array per group, rows contiguous) when given, else into new zeros; with ``squares``
    (one (n,) float32 array per group), Σ_{m∈g} w_m∘w_m is added into them too. ``order``: as for
    :func:`left_products`."""
    n, v = dosage.shape[1], left.shape[1]
    outputs = [np.zeros((n, v), dtype=np.float32) for _ in groups] if outputs is None else outputs
    buffer = np.empty(min(tile, n) * v, dtype=np.float32)
    for g, (rows, out) in enumerate(zip(groups, outputs)):
        for block, start, stop, z in _tiles(dosage, centre, inverse_scale, rows, tile, order=order):
            out[start:stop] += np.matmul(z.T, left[block], out=buffer[: (stop - start) * v].reshape(stop - start, v))
            if squares is not None:
                squares[g][start:stop] += np.einsum("ij,ij->j", z, z)
    return list(outputs)
