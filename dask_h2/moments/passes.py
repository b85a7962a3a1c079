"""The passes of the moments path over the genotypes, as Dask graphs of one task per marker chunk.

Every pass reads each chunk of ``call_dosage`` (all samples of the analysis) once,
standardizes it tile by tile (:mod:`dask_h2.kinship.streamed`) and multiplies it with thin
matrices; its outputs, per-marker rows and n-row sums, meet in one tree reduction, which
consumes each chunk's result as soon as it is ready.
No task holds an n × n or n × M array.

- :func:`moments_pass` (the one pass over every chunk): the marker table (allele frequency,
  status, centre, inverse scale) and, for a right-hand side R (n, w) = [probes U | projected
  traits | covariate bases], the products w_mᵀR per used marker, the squares of w_m summed
  over the samples of each missingness pattern, and the totals H_k = Σ_{m∈k} w_m (w_mᵀU) per
  component; each chunk also writes its part of every jackknife block's sums H_jk to a
  scratch Zarr array (4·K·n·B·P bytes a block);
- :func:`block_pass` (over the scratch, not the genotypes): per jackknife block j,
  ⟨H_jk, P H_jl⟩ and ⟨H_jk, P H_l⟩ (:mod:`dask_h2.moments.equations`).

Keeping the blocks' sums (J·K·n·B·P floats) is what spares a second pass over the genotypes:
the jackknife's cross terms need H_l, which is known only once every chunk has been read.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Iterable, Sequence

import dask
import dask.array as da
import dask.bag as db
import numpy as np
import zarr

from dask_h2.cluster import compute
from dask_h2.kinship.grm import chunk_marker_table
from dask_h2.kinship.partition import NO_COMPONENT, Partition
from dask_h2.progress import dask_progress
from dask_h2.planning import ComputePlan
from dask_h2.kinship.standardize import USED, MarkerQC, Scale, marker_moments, sum_of_squares
from dask_h2.kinship.streamed import left_products, right_products
from dask_h2.kinship.tasks import chunk_bounds, shared, single_threaded_blas


@dataclass(frozen=True, kw_only=True)
class Projection:
    """The missingness patterns of a fit over n samples: ``masks`` (n, P) bool, ``bases`` the
    orthonormal bases Q_p (n, c_p) of the fixed effects on each pattern (0 outside it), and
    ``n_probes`` B: the probe columns of pattern p are p·B … (p + 1)·B − 1."""

    masks: np.ndarray
    bases: tuple[np.ndarray, ...]
    n_probes: int

    @property
    def n_patterns(self) -> int:
        return self.masks.shape[1]

    @cached_property
    def sample_classes(self) -> tuple[np.ndarray, np.ndarray]:
        """(class (n,) int32 of each sample, membership (C, P) float64 of each class in each pattern):
        samples in the same patterns share a class."""
        membership, sample_class = np.unique(self.masks, axis=0, return_inverse=True)
        return sample_class.astype(np.int32).ravel(), membership.astype(np.float64)

    def columns(self, pattern: int) -> slice:
        return slice(pattern * self.n_probes, (pattern + 1) * self.n_probes)

    def project(self, values: np.ndarray, pattern: int) -> np.ndarray:
        """P_p v (n, ·) float64: v on the pattern's samples less its part in span(Q_p), 0 elsewhere."""
        out = np.where(self.masks[:, pattern, None], values, 0.0)
        basis = self.bases[pattern]
        return out - basis @ (basis.T @ out)

    def projected(self, sums: np.ndarray) -> np.ndarray:
        """P_p H_k (K, n, B·P) float64 on each pattern's probe columns, for H (K, n, B·P)."""
        out = np.empty(sums.shape)
        for k in range(sums.shape[0]):
            for p in range(self.n_patterns):
                out[k][:, self.columns(p)] = self.project(sums[k][:, self.columns(p)], p)
        return out

    def inner_products(self, sums: np.ndarray, projected: np.ndarray) -> np.ndarray:
        """⟨H_k, P_p G_l⟩ (K, K, P) over each pattern's probe columns, for H (K, n, B·P) and
        P G (K, n, B·P) from :meth:`projected` (P_p is symmetric, so only one side is projected)."""
        out = np.empty((sums.shape[0], projected.shape[0], self.n_patterns))
        for p in range(self.n_patterns):
            columns = self.columns(p)
            left = np.asarray(sums[:, :, columns], dtype=np.float64).reshape(sums.shape[0], -1)
            out[:, :, p] = left @ projected[:, :, columns].reshape(projected.shape[0], -1).T
        return out

    def self_products(self, sums: np.ndarray) -> np.ndarray:
        """⟨H_k, P_p H_l⟩ (K, K, P) for H (K, n, B·P), as ⟨H_k, D_p H_l⟩ − ⟨Q_pᵀH_k, Q_pᵀH_l⟩ (D_p:
        the pattern's samples): the same as :meth:`inner_products` with :meth:`projected`, without
        projecting H (the K × B·P columns of n rows) in float64."""
        size = sums.shape[0]
        out = np.empty((size, size, self.n_patterns))
        for p in range(self.n_patterns):
            mask = self.masks[:, p]
            rows = sums[:, :, self.columns(p)] if mask.all() else sums[:, mask][:, :, self.columns(p)]
            values = np.asarray(rows, dtype=np.float64)  # (K, r, B)
            basis = self.bases[p][mask]  # (r, c)
            coefficients = np.stack([basis.T @ values[k] for k in range(size)]).reshape(size, -1)  # Q_pᵀH_k
            flat = values.reshape(size, -1)
            out[:, :, p] = flat @ flat.T - coefficients @ coefficients.T
        return out


@dataclass(frozen=True, kw_only=True)
class ChunkRows:
    """The used markers of one chunk, as positions ``rows`` (r,) in the chunk sorted by
    (``block``, ``component``) (r,), so that every (block, component) is a contiguous range."""

    rows: np.ndarray
    component: np.ndarray
    block: np.ndarray

    def take(self, dosage: np.ndarray) -> np.ndarray:
        """The used rows of the chunk's ``dosage`` (m, n) in this order: the chunk itself when that is
        all of it in order (no copy), else a contiguous copy."""
        if self.rows.size == dosage.shape[0] and np.array_equal(self.rows, np.arange(dosage.shape[0])):
            return dosage
        return np.ascontiguousarray(dosage[self.rows])

    def blocks(self) -> list[tuple[int, slice, list[tuple[int, slice]]]]:
        """(block, its row range, [(component, row range within the block), …]) in order."""
        out = []
        for j in np.unique(self.block):
            span = np.flatnonzero(self.block == j)
            rows = slice(int(span[0]), int(span[-1]) + 1)
            parts = []
            for k in np.unique(self.component[rows]):
                where = np.flatnonzero(self.component[rows] == k)
                parts.append((int(k), slice(int(where[0]), int(where[-1]) + 1)))
            out.append((int(j), rows, parts))
        return out


def chunk_rows(table: np.ndarray, component: np.ndarray, *, block: np.ndarray) -> ChunkRows:
    """:class:`ChunkRows` of a chunk from its marker table (m, 4), the ``component`` (m,) of each
    marker (``NO_COMPONENT`` = none) and its jackknife ``block`` (m,): markers of a component
    that pass QC are used."""
    rows = np.flatnonzero((table[:, 1] == USED) & (component != NO_COMPONENT))
    rows = rows[np.lexsort((component[rows], block[rows]))]
    return ChunkRows(rows=rows, component=component[rows], block=block[rows])


@single_threaded_blas
def _moments_chunk(dosage: np.ndarray, selected: np.ndarray, block_of: np.ndarray, start: int, scale: Scale,
                   qc: MarkerQC, partition: Partition, right: np.ndarray, projection: Projection,
                   scratch: zarr.Array, pieces: dict[int, int]) -> list[dict[str, Any]]:
    moments = marker_moments(dosage)
    table = chunk_marker_table(dosage, selected=selected[:, None], scale=scale, qc=qc, moments=moments)
    rows = chunk_rows(
        table, partition.components(start, start + dosage.shape[0], allele_frequency=table[:, 0]), block=block_of
    )
    block = rows.take(dosage)
    centre, inverse_scale = table[rows.rows, 2], table[rows.rows, 3]
    sample_class, membership = projection.sample_classes
    if membership.shape[0] == 1:  # every pattern holds all samples: the squares follow from the counts
        products = left_products(block, centre=centre, inverse_scale=inverse_scale, right=right)[0]
        class_squares = sum_of_squares(moments[rows.rows], centre, inverse_scale=inverse_scale)[:, None]
    else:
        products, class_squares = left_products(
            block,
            centre=centre,
            inverse_scale=inverse_scale,
            right=right,
            sample_class=sample_class,
            n_classes=membership.shape[0],
        )
    probes = np.ascontiguousarray(products[:, : projection.n_probes * projection.n_patterns])
    totals = np.zeros((partition.size, dosage.shape[1], probes.shape[1]), dtype=np.float32)
    sums = np.empty_like(totals)  # one buffer for every block of the chunk
    for j, span, parts in rows.blocks():
        sums.fill(0.0)
        groups = [slice(span.start + p.start, span.start + p.stop) for _, p in parts]
        right_products(
            block,
            centre=centre,
            inverse_scale=inverse_scale,
            left=probes,
            groups=groups,
            outputs=[sums[k] for k, _ in parts],
        )
        totals += sums
        scratch[pieces[j]] = sums
    return [{"table": [table], "rows": [rows], "products": [products], "squares": [class_squares @ membership],
             "totals": totals}]


@dataclass(frozen=True, kw_only=True)
class MomentsPassResult:
    """The pass over the genotypes: the marker ``table`` (M, 4) and each chunk's used ``rows``; for
    the used markers in the order of the rows, ``products`` (m, w) = w_mᵀR and ``squares`` (m, P);
    and ``totals`` H_k (K, n, B·P) float32, summed in a float32 tree (rounding about 1e-7·log₂ of
    the number of chunks, relative)."""

    table: np.ndarray
    rows: list[ChunkRows]
    products: np.ndarray
    squares: np.ndarray
    totals: np.ndarray

    @property
    def component(self) -> np.ndarray:
        return np.concatenate([r.component for r in self.rows])

    @property
    def block(self) -> np.ndarray:
        return np.concatenate([r.block for r in self.rows])


def block_pieces(bounds: Sequence[tuple[int, int]], block: np.ndarray) -> tuple[list[dict[int, int]], list[list[int]]]:
    """Where each chunk writes its part of each jackknife block in the scratch: {block: piece} per
    chunk, and the pieces of each block (J lists), for ``block`` (M,) (−1 = not selected)."""
    per_chunk, per_block = [], [[] for _ in range(int(block.max()) + 1)]
    for start, stop in bounds:
        here = {}
        for j in np.unique(block[start:stop][block[start:stop] >= 0]):
            here[int(j)] = sum(map(len, per_block))
            per_block[int(j)].append(here[int(j)])
        per_chunk.append(here)
    return per_chunk, per_block


def moments_pass(dosage: da.Array, *, selected: np.ndarray, block: np.ndarray, scale: Scale, qc: MarkerQC,
                 partition: Partition, right: np.ndarray, projection: Projection, scratch: zarr.Array,
                 pieces: list[dict[int, int]], plan: ComputePlan, progress: bool = True) -> MomentsPassResult:
    """The pass over int8 ``dosage`` (M, n), chunked along markers only: ``selected`` (M,) bool
    markers before QC, each in jackknife ``block`` (M,) (−1 when not selected), right-hand side
    R (n, w); chunk t writes its sums of block j to ``scratch[pieces[t][j]]`` (K, n, B·P)."""
    bounds = chunk_bounds(dosage.chunks[0])
    right_shared, projection_shared = shared(np.ascontiguousarray(right, dtype=np.float32)), shared(projection)
    task = dask.delayed(_moments_chunk, pure=True)
    outputs = [task(chunk, selected[a:b], block[a:b], a, scale, qc, partition, right_shared, projection_shared,
                    scratch, pieces[t])
               for t, (chunk, (a, b)) in enumerate(zip(dosage.to_delayed().ravel(), bounds))]
    merged = db.from_delayed(outputs).reduction(_only, _merge_chunks, split_every=plan.split_every)
    with dask_progress("moments pass", enabled=progress):
        (result,) = compute(merged, plan=plan)
    return MomentsPassResult(
        table=np.concatenate(result["table"]),
        rows=result["rows"],
        products=np.concatenate(result["products"]),
        squares=np.concatenate(result["squares"]),
        totals=result["totals"],
    )


def _only(partition: Sequence[dict[str, Any]]) -> dict[str, Any]:
    (chunk,) = partition
    return chunk


def _merge_chunks(results: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Consecutive chunks' results as one, in their order: ``totals`` added in a new float32 buffer,
    the per-marker lists joined. One node of the pass's tree, which consumes each chunk's result
    as it comes, so that no chunk's n-row totals wait for the end of the pass."""
    results = list(results)  # an iterator at the tree's last step
    totals = results[0]["totals"].copy()
    for other in results[1:]:
        totals += other["totals"]
    return {"totals": totals, **{name: [part for r in results for part in r[name]]
                                 for name in ("table", "rows", "products", "squares")}}


@single_threaded_blas
def _block_products(scratch: zarr.Array, pieces: list[int], projection: Projection,
                    projected: np.ndarray) -> np.ndarray:
    sums = scratch[pieces[0]].astype(np.float64)
    for piece in pieces[1:]:
        sums += scratch[piece]
    return np.stack([projection.self_products(sums), projection.inner_products(sums, projected)])


def block_pass(scratch: zarr.Array, *, pieces: list[list[int]], projection: Projection, projected: np.ndarray,
               plan: ComputePlan, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(⟨H_jk, P H_jl⟩, ⟨H_jk, P H_l⟩), each (J, K, K, P), from the blocks' sums in ``scratch`` and
    the projected totals ``projected`` P H (K, n, B·P)."""
    size = projected.shape[0]
    shared_projection, shared_totals = shared(projection), shared(projected)
    task = dask.delayed(_block_products, pure=True)
    parts = [da.from_delayed(task(scratch, of_block, shared_projection, shared_totals),
                             (2, size, size, projection.n_patterns), np.float64)[:, None] for of_block in pieces]
    with dask_progress("jackknife blocks", enabled=progress):
        both = compute(da.concatenate(parts, axis=1), plan=plan)[0]
    return both[0], both[1]
