"""The genetic relationship matrix K = Σ_b W_bᵀ W_b / M as a Dask reduction over marker chunks.

Each task reads one chunk of markers (all samples), computes its frequencies and
scales, standardizes to float32 block by block and adds each block's float32 SYRK
product into the chunk's n × n result; the chunk results are summed in float64 in a
tree (``split_every`` at a time), so the work is one pass over the data and memory is
a few n × n buffers.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import dask.array as da
import numpy as np
from scipy.linalg.blas import ssyrk

from .cluster import compute
from .resources import STANDARDIZE_BLOCK, ComputePlan, plan_grm
from .standardize import STATUS_NAMES, USED, MarkerQC, Scale, centre_and_scale, marker_moments, standardize


@dataclass(frozen=True)
class Kinship:
    """K (n, n) float64 with its marker bookkeeping.

    ``allele_frequency`` (M,) is p = E[g]/2 over observed calls; ``marker_counts``
    counts the markers by status (``dask_h2.standardize.STATUS_NAMES``).
    """

    matrix: np.ndarray
    n_markers_used: int
    n_markers_dropped: int
    scale: str
    allele_frequency: np.ndarray
    marker_counts: dict[str, int]


def chunk_scaling(dosage: np.ndarray, selected: np.ndarray, scale: Scale,
                  qc: MarkerQC) -> tuple[np.ndarray, np.ndarray]:
    """Centre 2p and inverse scale (m,) of one chunk (m, n) of dosages over all its samples
    (inverse scale 0 for the markers left out of K), for :func:`dask_h2.standardize.standardize`."""
    markers = chunk_marker_table(dosage, selected, scale, qc)
    return markers[:, 2], markers[:, 3]


def _chunk_gram(dosage: np.ndarray, scaling: np.ndarray) -> np.ndarray:
    """Upper triangle of W_bᵀW_b (1, n, n) float32 for one chunk (m, n) of dosages, given its
    :func:`marker_table` block ``scaling`` (m, 4).

    The chunk is standardized ``STANDARDIZE_BLOCK`` markers at a time into one reused
    buffer, each block's SYRK adding into the float32 result (as one SYRK of the whole
    chunk would), so the float32 copy of the chunk is never held whole.
    """
    m, n = dosage.shape
    gram = np.zeros((n, n), dtype=np.float32, order="F")
    buffer = np.empty((min(m, STANDARDIZE_BLOCK), n), dtype=np.float32)
    for start in range(0, m, STANDARDIZE_BLOCK):
        stop = min(start + STANDARDIZE_BLOCK, m)
        z = standardize(dosage[start:stop], scaling[start:stop, 2], scaling[start:stop, 3], out=buffer[: stop - start])
        gram = ssyrk(1.0, z.T, beta=1.0, c=gram, trans=0, lower=0, overwrite_c=1)
    return gram[None]


def chunk_marker_table(dosage: np.ndarray, selected: np.ndarray, scale: Scale, qc: MarkerQC,
                       moments: np.ndarray | None = None) -> np.ndarray:
    """Per marker (m, 4): allele frequency p, status code, centre 2p and inverse scale, from the
    chunk's dosages (m, n) or its already counted :func:`dask_h2.standardize.marker_moments`."""
    moments = marker_moments(dosage) if moments is None else moments
    centre, inverse_scale, status = centre_and_scale(moments, dosage.shape[1], scale, qc, selected[:, 0])
    return np.stack([centre / 2.0, status.astype(np.float64), centre, inverse_scale], axis=1)


def kinship(dosage: da.Array, scale: Scale = "hwe", plan: ComputePlan | None = None, qc: MarkerQC = MarkerQC(),
            selected: np.ndarray | None = None) -> Kinship:
    """K from int8 dosages (M markers, n samples; −1 = missing), chunked along markers only.

    ``plan`` (default: :func:`dask_h2.resources.plan_grm` for n and M) sets the marker chunk
    size (existing chunks are merged up to it, never split), the reduction fan-in and
    the split of cores between Dask threads and BLAS threads. Markers failing ``qc``
    or not ``selected`` (bool (M,)) are left out. Centring makes K·1 = 0 in exact
    arithmetic; the float32 products are double-centred at the end so that it holds to
    float64 rounding too.
    """
    n = dosage.shape[1]
    plan = plan or plan_grm(n, dosage.shape[0], store_chunk=max(dosage.chunks[0]))
    dosage, selection = marker_chunks(dosage, plan.chunk_markers, selected)
    markers = marker_table(dosage, selection, scale, qc)  # computed once per chunk, shared with its SYRK
    grams = da.blockwise(
        _chunk_gram, "bij", dosage, "bs", markers, "bc", new_axes={"i": n, "j": n},
        adjust_chunks={"b": 1}, concatenate=True, dtype=np.float32, meta=np.empty((0, 0, 0), np.float32),
    )
    upper, per_marker = compute(sum_partials(grams, plan.split_every)[0], markers, plan=plan)
    used, counts = count_markers(per_marker)
    matrix = symmetrize_upper(upper)
    matrix /= used
    matrix -= matrix.mean(axis=0, keepdims=True)
    matrix -= matrix.mean(axis=1, keepdims=True)
    return Kinship(matrix, used, dosage.shape[0] - used, scale, per_marker[:, 0], counts)


def symmetrize_upper(matrix: np.ndarray, block: int = 512) -> np.ndarray:
    """``matrix`` (n, n) with its strict lower triangle overwritten by the transpose of its
    upper one, in place, ``block`` rows at a time (no n × n temporary)."""
    n = matrix.shape[0]
    for start in range(0, n, block):
        stop = min(start + block, n)
        diagonal = matrix[start:stop, start:stop]
        lower = np.tril_indices(stop - start, -1)
        diagonal[lower] = diagonal.T[lower]
        matrix[stop:, start:stop] = matrix[start:stop, stop:].T
    return matrix


def marker_chunks(dosage: da.Array, chunk_markers: int, selected: np.ndarray | None) -> tuple[da.Array, da.Array]:
    """``dosage`` with all samples in one block and its marker chunks merged up to ``chunk_markers``
    (never split), and the marker selection (M, 1) bool chunked alike (default: all markers)."""
    if dosage.numblocks[1] != 1:
        dosage = dosage.rechunk({1: -1})
    current = max(dosage.chunks[0])
    if current < chunk_markers:
        dosage = dosage.rechunk({0: chunk_markers // current * current})
    selection = da.from_array(np.ones(dosage.shape[0], dtype=bool) if selected is None else np.asarray(selected, bool),
                              chunks=dosage.chunks[0])[:, None]
    return dosage, selection


def marker_table(dosage: da.Array, selection: da.Array, scale: Scale, qc: MarkerQC) -> da.Array:
    """Per marker (M, 4), lazily: allele frequency p, status code, centre 2p and inverse scale
    (see :func:`marker_chunks`)."""
    return da.map_blocks(chunk_marker_table, dosage, selection, scale, qc, dtype=np.float64,
                         chunks=(dosage.chunks[0], (4,)), meta=np.empty((0, 0)))


def count_markers(per_marker: np.ndarray) -> tuple[int, dict[str, int]]:
    """The number of markers in K and the counts by status, from a computed :func:`marker_table`."""
    status_counts = np.bincount(per_marker[:, 1].astype(np.int64), minlength=len(STATUS_NAMES))
    used = int(status_counts[USED])
    if used == 0:
        raise ValueError("no marker passes the filters with variation among its observed calls: K is undefined")
    return used, dict(zip(STATUS_NAMES, map(int, status_counts)))


def _add_in_place(parts, axis=None, keepdims=True, dtype=np.float64) -> np.ndarray:
    """Sum (nested lists of) partial sums into one buffer of ``dtype``, adding in place (each partial
    is consumed by this sum alone, so the first one of that dtype is reused as the buffer)."""
    total = None
    for part in (parts if isinstance(parts, list) else [parts]):
        part = _add_in_place(part, dtype=dtype) if isinstance(part, list) else part
        if total is None:
            total = part if part.dtype == dtype else part.astype(dtype)
        else:
            total += part
    return total


def sum_partials(parts: da.Array, split_every: int, dtype: type = np.float64) -> da.Array:
    """Σ over axis 0 of the (1, ...) blocks of ``parts`` as one (1, ...) block of ``dtype`` (default
    float64), in a tree of ``split_every`` inputs per step. Unlike ``Array.sum``, which concatenates
    its inputs before adding, each step adds in place: it holds its inputs and one buffer."""
    add = functools.partial(_add_in_place, dtype=dtype)
    return da.reduction(parts, chunk=lambda block, axis, keepdims: block, combine=add, aggregate=add, axis=0,
                        keepdims=True, dtype=dtype, split_every=split_every, concatenate=False,
                        meta=np.empty((0,) * parts.ndim, dtype=dtype))
