"""K for many samples: an n × n Dask array of t × t sample tiles, so that no worker holds K.

The untiled GRM (:mod:`dask_h2.kinship.grm`) sums n × n products over marker chunks: every
task holds a few n × n buffers, which stops fitting a worker of 2 GiB near n ≈ 6,700
samples for M = 319,147 (9,500 for M = 50,000: the reduction tree deepens with M).
Here each task computes one tile K[I, J] (I ≤ J, sample tiles of size t) and
streams over all marker chunks itself: it reads a chunk (all samples: its markers'
frequencies need them), standardizes the columns I and J in float32, and adds their
SYRK (I = J) or GEMM product (numpy's, which lets a worker's other threads run) to a float64
accumulator. A task's memory is set by t
and the chunk size, never by n or by the scheduler's order; the price is that every
one of the T(T + 1)/2 tasks (T = ⌈n/t⌉) reads the genotypes, a small cost beside the
O(m·t²) products for t in the thousands. The tiles below the diagonal are transposes.

Pass 1 writes the raw tiles into a Zarr array (chunks t × t) from the workers and
sums its rows; pass 2 double-centres it in place (K·1 = 0) and scales by 1/M, tile by
tile. With a partition of the markers into P parts, each task accumulates P tiles, one
per K_k, into a (P, n, n) array. The driver then reads K whole, once, for the eigendecomposition: that needs
8n² bytes for K plus LAPACK's ``evd`` workspace and eigenvectors, about 32n² bytes in
all (n = 20,000: 12 GiB; n = 27,000: 22 GiB; n = 50,000: 75 GiB), which bounds n by
the driver's memory, not by the workers'.
"""
from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import zarr

from dask_h2.cluster import compute
from dask_h2.kinship.grm import (
    Kinship,
    PartitionedKinship,
    chunk_scaling,
    count_markers,
    count_parts,
    marker_chunks,
    marker_table,
    merged_chunk,
    part_blocks,
)
from dask_h2.kinship.partition import Partition
from dask_h2.planning import TilePlan
from dask_h2.kinship.standardize import standardize
from dask_h2.kinship.selection import MarkerQC, Scale


def _tile_sums(dosage: zarr.Array, samples: np.ndarray | None, selected: np.ndarray, rows: slice, cols: slice,
               chunk: int, scale: Scale, qc: MarkerQC, partition: Partition) -> np.ndarray:
    """Σ_b W_kb[:, rows]ᵀ W_kb[:, cols] (P, r, c) float64 for each part k over all marker chunks of
    ``dosage`` (restricted to ``samples``), float32 products accumulated in float64."""
    diagonal = rows == cols
    total = np.zeros((partition.size, rows.stop - rows.start, cols.stop - cols.start))
    for start in range(0, dosage.shape[0], chunk):
        stop = min(start + chunk, dosage.shape[0])
        block = dosage[start:stop] if samples is None else dosage.oindex[start:stop, samples]
        scaling = chunk_scaling(
            block, selected=selected[start:stop, None], scale=scale, qc=qc, partition=partition, start=start
        )
        for part, markers in part_blocks(scaling[:, 2], partition.size, block=stop - start):
            centre, inverse_scale, part_block = scaling[markers, 0], scaling[markers, 1], block[markers]
            z_rows = standardize(
                part_block, centre=centre, inverse_scale=inverse_scale, columns=(rows.start, rows.stop)
            )
            if diagonal:  # numpy's SYRK (both triangles); its BLAS calls release the GIL, scipy.linalg.blas's do not
                total[part] += z_rows.T @ z_rows
            else:
                z_cols = standardize(
                    part_block, centre=centre, inverse_scale=inverse_scale, columns=(cols.start, cols.stop)
                )
                total[part] += z_rows.T @ z_cols
    return total


def tiled_kinship(dosage: zarr.Array, out: zarr.Array, *, plan: TilePlan, scale: Scale = "hwe",
                  qc: MarkerQC = MarkerQC(), samples: np.ndarray | None = None,
                  selected: np.ndarray | None = None,
                  partition: Partition = Partition()) -> Kinship | PartitionedKinship:
    """K of the int8 ``dosage`` array (M markers, N samples; columns ``samples``, default all)
    written into ``out`` (n, n) float64 by tiles of ``plan.tile``, then read whole; with a
    ``partition`` of more than one part, each K_k into ``out`` (P, n, n).

    Equals :func:`dask_h2.kinship.grm.kinship` (:func:`dask_h2.kinship.grm.partitioned_kinship`) up to float32
    rounding of the products (the tiles use other BLAS blockings); ``out`` should be chunked
    ``plan.tile`` square.
    """
    n = dosage.shape[1] if samples is None else len(samples)
    selected = np.ones(dosage.shape[0], dtype=bool) if selected is None else np.asarray(selected, bool)
    chunk = merged_chunk(plan.chunk_markers, dosage.chunks[0])
    shared = dask.delayed(samples, pure=True), dask.delayed(selected, pure=True), dask.delayed(partition, pure=True)
    bounds = [slice(start, min(start + plan.tile, n)) for start in range(0, n, plan.tile)]
    tile = dask.delayed(_tile_sums, pure=True)
    size = partition.size
    upper = {(i, j): da.from_delayed(tile(dosage, *shared[:2], bounds[i], bounds[j], chunk, scale, qc, shared[2]),
                                     (size, bounds[i].stop - bounds[i].start, bounds[j].stop - bounds[j].start),
                                     np.float64)
             for i in range(len(bounds)) for j in range(i, len(bounds))}
    raw = da.block([[upper[i, j] if i <= j else upper[j, i].transpose(0, 2, 1) for j in range(len(bounds))]
                    for i in range(len(bounds))])
    columns = da.from_zarr(dosage)
    if samples is not None:
        columns = columns[:, samples]
    chunked, selection = marker_chunks(columns, chunk, selected=selected)
    markers = marker_table(chunked, selection, scale=scale, qc=qc, partition=partition)
    stored = raw if out.ndim == 3 else raw[0]
    _, row_sums, per_marker = compute(da.store(stored, out, lock=False, compute=False), raw.sum(axis=2), markers,
                                      plan=plan)
    used, counts = count_markers(per_marker)
    part_markers = count_parts(per_marker, partition, counts=counts) if out.ndim == 3 else np.array([used])
    mean = row_sums / n
    centred = (da.from_zarr(out).reshape((-1, n, n)) - mean[:, :, None] - mean[:, None, :]
               + mean.mean(axis=1)[:, None, None]) / part_markers[:, None, None]
    compute(da.store(centred if out.ndim == 3 else centred[0], out, lock=False, compute=False), plan=plan)
    if out.ndim == 2:
        return Kinship(
            matrix=out[:],
            n_markers_used=used,
            n_markers_dropped=dosage.shape[0] - used,
            scale=scale,
            allele_frequency=per_marker[:, 0],
            marker_counts=counts,
        )
    return PartitionedKinship(
        matrices=out[:],
        part_names=partition.names,
        part_markers=part_markers,
        n_markers_dropped=dosage.shape[0] - used,
        scale=scale,
        allele_frequency=per_marker[:, 0],
        marker_counts=counts,
    )
