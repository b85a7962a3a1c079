"""The genetic relationship matrix K = Σ_b W_bᵀ W_b / M as a Dask reduction over marker chunks.

Each task reads one chunk of markers (all samples), computes its frequencies and
scales, standardizes to float32 block by block and adds each block's float32 SYRK
product into the chunk's n × n result; the chunk results are summed in float64 in a
tree (``split_every`` at a time), so the work is one pass over the data and memory is
a few n × n buffers.

With a :class:`dask_h2.kinship.partition.Partition` of the markers into P parts, the same pass
gives one K_k = W_kW_kᵀ / M_k per part: each task adds every marker's SYRK into the
n × n result of its part, so a task and each partial sum hold P of them.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import dask.array as da
import numpy as np
import zarr
from scipy.linalg.blas import ssyrk

from dask_h2.cluster import compute
from dask_h2.errors import NAMED, ParameterError
from dask_h2.kinship.partition import NO_COMPONENT, Partition
from dask_h2.planning import STANDARDIZE_BLOCK, ComputePlan, plan_grm
from dask_h2.kinship.standardize import STATUS_NAMES, USED, centre_and_scale, marker_moments, standardize
from dask_h2.kinship.selection import MarkerQC, Scale


@dataclass(frozen=True, kw_only=True)
class Kinship:
    """K (n, n) float64 with its marker bookkeeping.

    ``allele_frequency`` (M,) is p = E[g]/2 over observed calls; ``marker_counts``
    counts the markers by status (``dask_h2.kinship.standardize.STATUS_NAMES``).
    """

    matrix: np.ndarray
    n_markers_used: int
    n_markers_dropped: int
    scale: str
    allele_frequency: np.ndarray
    marker_counts: dict[str, int]


@dataclass(frozen=True, kw_only=True)
class PartitionedKinship:
    """One K_k per part: ``matrices`` (P, n, n) float64, each double-centred, from ``part_markers``
    (P,) markers; the markers used in no part are counted in ``marker_counts['outside_partition']``."""

    matrices: np.ndarray
    part_names: tuple[str, ...]
    part_markers: np.ndarray
    n_markers_dropped: int
    scale: str
    allele_frequency: np.ndarray
    marker_counts: dict[str, int]

    def combined(self) -> np.ndarray:
        """Σ_k M_k K_k / Σ_k M_k (n, n): the K of every marker in a part."""
        return np.tensordot(self.part_markers / self.part_markers.sum(), self.matrices, axes=1)


def chunk_scaling(dosage: np.ndarray, *, selected: np.ndarray, scale: Scale, qc: MarkerQC,
                  partition: Partition = Partition(), start: int = 0) -> np.ndarray:
    """Centre 2p, inverse scale and part (m, 3) of one chunk (m, n) of dosages, the store's variants
    ``start:start + m``, over all its samples (inverse scale 0 and part ``NO_COMPONENT`` for the markers
    left out of K), for :func:`dask_h2.kinship.standardize.standardize`."""
    info = {None: {"array-location": [(start, start + dosage.shape[0])]}}
    return chunk_part_table(dosage, selected=selected, scale=scale, qc=qc, partition=partition, block_info=info)[:, 2:]


def _chunk_gram(dosage: np.ndarray, scaling: np.ndarray, parts: int = 1) -> np.ndarray:
    """Upper triangles of W_kᵀW_k (1, P, n, n) float32, one per part, for one chunk (m, n) of
    dosages, given its :func:`marker_table` block ``scaling`` (m, 5).

    The chunk is standardized ``STANDARDIZE_BLOCK`` markers at a time into one reused
    buffer, each block's SYRK adding into its part's float32 result (as one SYRK of the
    part's markers would), so the float32 copy of the chunk is never held whole.
    """
    m, n = dosage.shape
    grams = np.zeros((parts, n, n), dtype=np.float32)
    buffer = np.empty((min(m, STANDARDIZE_BLOCK), n), dtype=np.float32)
    for part, rows in part_blocks(scaling[:, 4], parts):
        z = standardize(
            dosage[rows], centre=scaling[rows, 2], inverse_scale=scaling[rows, 3], out=buffer[: _length(rows, m)]
        )
        # grams[part].T is Fortran-ordered: SYRK adds in place into its lower, i.e. grams[part]'s upper, triangle
        ssyrk(1.0, z.T, beta=1.0, c=grams[part].T, trans=0, lower=1, overwrite_c=1)
    return grams[None]


def part_blocks(codes: np.ndarray, parts: int, *, block: int = STANDARDIZE_BLOCK):
    """(part, rows) for every ``block`` markers of each part of a chunk, given the part code of
    each marker (m,) (``NO_COMPONENT``: in none): slices with one part, else index arrays."""
    m = codes.shape[0]
    if parts == 1:
        for start in range(0, m, block):
            yield 0, slice(start, min(start + block, m))
        return
    for part in range(parts):
        rows = np.flatnonzero(codes == part)
        for start in range(0, rows.size, block):
            yield part, rows[start:start + block]


def _length(rows: slice | np.ndarray, m: int) -> int:
    return len(range(*rows.indices(m))) if isinstance(rows, slice) else rows.size


def chunk_marker_table(dosage: np.ndarray, *, selected: np.ndarray, scale: Scale, qc: MarkerQC,
                       moments: np.ndarray | None = None) -> np.ndarray:
    """Per marker (m, 4): allele frequency p, status code, centre 2p and inverse scale, from the
    chunk's dosages (m, n) or its already counted :func:`dask_h2.kinship.standardize.marker_moments`."""
    moments = marker_moments(dosage) if moments is None else moments
    centre, inverse_scale, status = centre_and_scale(
        moments, n_samples=dosage.shape[1], scale=scale, qc=qc, selected=selected[:, 0]
    )
    return np.stack([centre / 2.0, status.astype(np.float64), centre, inverse_scale], axis=1)


def chunk_part_table(dosage: np.ndarray, selected: np.ndarray, *, scale: Scale, qc: MarkerQC,
                     partition: Partition = Partition(), block_info=None) -> np.ndarray:
    """:func:`chunk_marker_table` (m, 4) with a fifth column, the part of each marker of the store's
    variants at ``block_info``'s location (``NO_COMPONENT`` for a marker left out of K or in no part)."""
    table = chunk_marker_table(dosage, selected=selected, scale=scale, qc=qc)
    start, stop = block_info[None]["array-location"][0] if block_info else (0, dosage.shape[0])
    part = np.where(table[:, 1] == USED, partition.components(start, stop, allele_frequency=table[:, 0]), NO_COMPONENT)
    return np.column_stack([table, part.astype(np.float64)])


def kinship(dosage: da.Array, *, scale: Scale = "hwe", plan: ComputePlan | None = None, qc: MarkerQC = MarkerQC(),
            selected: np.ndarray | None = None) -> Kinship:
    """K = WWᵀ/M of the standardized genotypes, as a Dask reduction over marker chunks.

    Parameters
    ----------
    dosage : dask.array.Array
        int8 (M markers, n samples), 0/1/2 copies of an allele, −1 = missing; chunked along markers.
    scale : {"hwe", "empirical"}
        w = (g − 2p)/sqrt(2p(1 − p)) (GCTA), or divided by the sample SD of the observed calls.
    plan : ComputePlan, optional
        Marker chunk size (existing chunks are merged up to it, never split), reduction fan-in and the
        split of cores between Dask and BLAS threads (default: :func:`dask_h2.planning.plan_grm`).
    qc : MarkerQC
        Markers below its minor allele frequency or above its missingness are left out.
    selected : numpy.ndarray, optional
        bool (M,): the markers allowed in before QC (default: all).

    Returns
    -------
    Kinship
        K (n, n) float64, double-centred (K·1 = 0 to float64 rounding), with the markers used and
        dropped, counted by status, and each marker's allele frequency (M,).

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> g = np.random.default_rng(0).integers(0, 3, (500, 40)).astype(np.int8)
    >>> k = kinship(da.from_array(g, chunks=(100, 40)))
    >>> k.matrix.shape, k.n_markers_used, bool(abs(k.matrix.sum(axis=1)).max() < 1e-10)
    ((40, 40), 500, True)
    """
    uppers, per_marker = _part_grams(dosage, scale, plan, qc, selected, Partition())
    used, counts = count_markers(per_marker)
    return Kinship(matrix=finish_kinship(uppers[0], used), n_markers_used=used,
                   n_markers_dropped=dosage.shape[0] - used, scale=scale, allele_frequency=per_marker[:, 0],
                   marker_counts=counts)


def partitioned_kinship(
    dosage: da.Array,
    partition: Partition,
    *,
    scale: Scale = "hwe",
    plan: ComputePlan | None = None,
    qc: MarkerQC = MarkerQC(),
    selected: np.ndarray | None = None,
) -> PartitionedKinship:
    """One K_k = W_kW_kᵀ/M_k per part of ``partition``, all in one pass over the dosages.

    The other parameters are :func:`kinship`'s (``plan`` made for ``partition.size`` parts). A part
    without a usable marker is a :class:`~dask_h2.errors.ParameterError` naming it.

    Returns
    -------
    PartitionedKinship
        K_k (P, n, n), each double-centred, with the markers of each part (P,).

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> from dask_h2 import parse_partition
    >>> g = np.random.default_rng(0).integers(0, 3, (500, 40)).astype(np.int8)
    >>> parts = partitioned_kinship(da.from_array(g, chunks=(100, 40)), parse_partition("maf:0,0.3,0.5", []))
    >>> parts.matrices.shape, int(parts.part_markers.sum())
    ((2, 40, 40), 500)
    """
    uppers, per_marker = _part_grams(dosage, scale, plan, qc, selected, partition)
    used, counts = count_markers(per_marker)
    part_markers = count_parts(per_marker, partition, counts=counts)
    matrices = np.stack([finish_kinship(upper, count) for upper, count in zip(uppers, part_markers)])
    return PartitionedKinship(matrices=matrices, part_names=partition.names, part_markers=part_markers,
                              n_markers_dropped=dosage.shape[0] - used, scale=scale,
                              allele_frequency=per_marker[:, 0], marker_counts=counts)


def _part_grams(dosage: da.Array, scale: Scale, plan: ComputePlan | None, qc: MarkerQC,
                selected: np.ndarray | None, partition: Partition) -> tuple[np.ndarray, np.ndarray]:
    """Σ over chunks of each part's upper triangle of W_kᵀW_k (P, n, n) float64 and the
    computed :func:`marker_table` (M, 5)."""
    n, parts = dosage.shape[1], partition.size
    plan = plan or plan_grm(n, dosage.shape[0], store_chunk=max(dosage.chunks[0]), parts=parts)
    dosage, selection = marker_chunks(dosage, plan.chunk_markers, selected=selected)
    markers = marker_table(
        dosage, selection, scale=scale, qc=qc, partition=partition
    )  # computed once per chunk, shared with its SYRK
    grams = da.blockwise(
        _chunk_gram, "bkij", dosage, "bs", markers, "bc", new_axes={"k": parts, "i": n, "j": n}, parts=parts,
        adjust_chunks={"b": 1}, concatenate=True, dtype=np.float32, meta=np.empty((0, 0, 0, 0), np.float32),
    )
    uppers, per_marker = compute(sum_partials(grams, plan.split_every)[0], markers, plan=plan)
    return uppers, per_marker


def finish_kinship(upper: np.ndarray, n_markers: int) -> np.ndarray:
    """K (n, n) from the upper triangle of Σ WᵀW over ``n_markers`` markers, in place: symmetrized,
    divided by the marker count and double-centred."""
    matrix = symmetrize_upper(upper)
    matrix /= n_markers
    matrix -= matrix.mean(axis=0, keepdims=True)
    matrix -= matrix.mean(axis=1, keepdims=True)
    return matrix


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


def merged_chunk(chunk_markers: int, store_chunk: int) -> int:
    """Markers a task reads: the store's chunks of ``store_chunk`` markers merged up to ``chunk_markers``,
    never split.

    Examples
    --------
    >>> merged_chunk(5000, 671), merged_chunk(100, 671)
    (4697, 671)
    """
    return max(store_chunk, chunk_markers // store_chunk * store_chunk)


def sample_columns(dosage: zarr.Array, samples: np.ndarray, *, chunk_markers: int = 0) -> da.Array:
    """A store's int8 ``dosage`` (M, N) as a Dask array over the samples analysed, ``samples`` (N,) bool,
    in blocks of all samples and the store's marker chunks merged up to ``chunk_markers``
    (:func:`merged_chunk`; 0: the store's chunks), each read by one task into one buffer (no copy to
    join chunks)."""
    columns = da.from_zarr(dosage, chunks=(merged_chunk(chunk_markers, dosage.chunks[0]), dosage.shape[1]))
    if samples.all():
        return columns
    index = np.flatnonzero(samples)
    # np.take gives each block in C order; Dask's fancy indexing, fused into the read by the passes'
    # to_delayed, gave it in F order, which the kernels reading rows copied again for every tile
    return columns.map_blocks(np.take, index, axis=1, chunks=(columns.chunks[0], (index.size,)), dtype=columns.dtype)


def marker_chunks(dosage: da.Array, chunk_markers: int, *, selected: np.ndarray | None) -> tuple[da.Array, da.Array]:
    """``dosage`` with all samples in one block and its marker chunks merged up to ``chunk_markers``
    (never split), and the marker selection (M, 1) bool chunked alike (default: all markers)."""
    if dosage.numblocks[1] != 1:
        dosage = dosage.rechunk({1: -1})
    current = max(dosage.chunks[0])
    if current < chunk_markers:
        dosage = dosage.rechunk({0: merged_chunk(chunk_markers, current)})
    selection = da.from_array(np.ones(dosage.shape[0], dtype=bool) if selected is None else np.asarray(selected, bool),
                              chunks=dosage.chunks[0])[:, None]
    return dosage, selection


def marker_table(dosage: da.Array, selection: da.Array, *, scale: Scale, qc: MarkerQC,
                 partition: Partition = Partition()) -> da.Array:
    """Per marker (M, 5), lazily: allele frequency p, status code, centre 2p, inverse scale and
    part (see :func:`marker_chunks`)."""
    return da.map_blocks(chunk_part_table, dosage, selection, scale=scale, qc=qc, partition=partition, dtype=np.float64,
                         chunks=(dosage.chunks[0], (5,)), meta=np.empty((0, 0)))


def count_markers(per_marker: np.ndarray) -> tuple[int, dict[str, int]]:
    """The number of markers in K and the counts by status, from a computed :func:`marker_table`."""
    status_counts = np.bincount(per_marker[:, 1].astype(np.int64), minlength=len(STATUS_NAMES))
    used = int(status_counts[USED])
    if used == 0:
        raise ValueError("no marker passes the filters with variation among its observed calls: K is undefined")
    return used, dict(zip(STATUS_NAMES, map(int, status_counts)))


def count_parts(per_marker: np.ndarray, partition: Partition, *, counts: dict[str, int]) -> np.ndarray:
    """Markers (P,) in each part, from a computed :func:`marker_table`; adds the used markers in
    no part to ``counts`` as ``outside_partition``. A part without a marker is a :class:`ParameterError` naming it."""
    part_markers = np.bincount(per_marker[:, 4][per_marker[:, 4] >= 0].astype(np.int64), minlength=partition.size)
    empty = [name for name, count in zip(partition.names, part_markers) if count == 0]
    if empty:
        raise ParameterError(
            f"{{partition}}: {', '.join(empty)} {'has' if len(empty) == 1 else 'have'} no marker "
            f"passing the filters (markers per part: {dict(zip(partition.names, part_markers.tolist()))})",
            partition=NAMED,
        )
    counts["outside_partition"] = counts["used"] - int(part_markers.sum())
    return part_markers


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


def sum_partials(parts: da.Array, split_every: int, *, dtype: type = np.float64) -> da.Array:
    """Σ over axis 0 of the (1, ...) blocks of ``parts`` as one (1, ...) block of ``dtype`` (default
    float64), in a tree of ``split_every`` inputs per step. Unlike ``Array.sum``, which concatenates
    its inputs before adding, each step adds in place: it holds its inputs and one buffer."""
    add = functools.partial(_add_in_place, dtype=dtype)
    return da.reduction(parts, chunk=lambda block, axis, keepdims: block, combine=add, aggregate=add, axis=0,
                        keepdims=True, dtype=dtype, split_every=split_every, concatenate=False,
                        meta=np.empty((0,) * parts.ndim, dtype=dtype))
