"""The passes of the moments path over the genotypes, as Dask graphs of one task per marker chunk.

Every pass reads each chunk of ``call_dosage`` (all samples of the analysis) once,
standardizes it tile by tile (:mod:`dask_h2.streamed`) and multiplies it with thin
matrices; its outputs are per-marker rows (gathered) and n-row sums (added in a tree).
No task holds an n × n or n × M array.

- :func:`sketch_pass`: the sketch Y = Σ_m w_m w_mᵀ Ω (n, q) of K for the PCs
  (:mod:`dask_h2.sketch`), over the chunks it is given (the PCs may use a subset).
- :func:`moments_pass` (pass A): the marker table (allele frequency, status, centre, inverse
  scale) and, for a right-hand side R (n, w) = [probes U | projected traits | covariate
  bases], the products w_mᵀR per used marker, the squares of w_m summed over the samples of
  each missingness pattern, the totals H_k = Σ_{m∈k} w_m (w_mᵀU) per component and, per
  jackknife block j, ⟨H_jk, P H_jl⟩ (:mod:`dask_h2.moments`).
- :func:`cross_pass` (pass B): per marker, Σ_b (w_mᵀu_b)(w_mᵀ P H_l,b) for every component l.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from operator import getitem
from typing import Any, Sequence

import dask
import dask.array as da
import numpy as np

from .cluster import active_client, compute
from .grm import chunk_marker_table, sum_partials
from .progress import dask_progress
from .resources import ComputePlan
from .partition import NO_COMPONENT, Partition
from .standardize import USED, MarkerQC, Scale
from .streamed import left_products, right_products


@dataclass(frozen=True)
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

    def block_products(self, sums: np.ndarray) -> np.ndarray:
        """⟨H_k, P_p H_l⟩ (K, K, P) over each pattern's probe columns, for H (K, n, B·P)."""
        out = np.empty((sums.shape[0], sums.shape[0], self.n_patterns))
        for p in range(self.n_patterns):
            rows = sums[:, self.masks[:, p], self.columns(p)].astype(np.float64)
            flat = rows.reshape(rows.shape[0], -1)
            within = np.einsum("ic,kib->kcb", self.bases[p][self.masks[:, p]], rows).reshape(rows.shape[0], -1)
            out[:, :, p] = flat @ flat.T - within @ within.T
        return out


@dataclass(frozen=True)
class ChunkRows:
    """The used markers of one chunk, as positions ``rows`` (r,) in the chunk sorted by
    (``block``, ``component``) (r,), so that every (block, component) is a contiguous range."""

    rows: np.ndarray
    component: np.ndarray
    block: np.ndarray

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


def chunk_rows(table: np.ndarray, component: np.ndarray, block: np.ndarray) -> ChunkRows:
    """:class:`ChunkRows` of a chunk from its marker table (m, 4), the ``component`` (m,) of each
    marker (``NO_COMPONENT`` = none) and its jackknife ``block`` (m,): markers of a component
    that pass QC are used."""
    rows = np.flatnonzero((table[:, 1] == USED) & (component != NO_COMPONENT))
    rows = rows[np.lexsort((component[rows], block[rows]))]
    return ChunkRows(rows, component[rows], block[rows])


def chunk_bounds(chunks: Sequence[int]) -> list[tuple[int, int]]:
    """(start, stop) of consecutive chunks of the given sizes."""
    ends = np.cumsum([0, *chunks])
    return [(int(a), int(b)) for a, b in zip(ends[:-1], ends[1:])]


def _shared(value: Any) -> Any:
    """A large constant input of many tasks: scattered to every worker on a cluster, else one graph key."""
    client = active_client()
    if client is not None:
        return client.scatter(value, broadcast=True, hash=False)
    return dask.delayed(value, pure=True)


def _sketch_chunk(dosage: np.ndarray, selected: np.ndarray, scale: Scale, qc: MarkerQC,
                  omega: np.ndarray) -> np.ndarray:
    table = chunk_marker_table(dosage, selected[:, None], scale, qc)
    used = table[:, 1] == USED
    block, centre, inverse_scale = dosage[used], table[used, 2], table[used, 3]
    left = left_products(block, centre, inverse_scale, omega)[0]
    return right_products(block, centre, inverse_scale, left, [slice(0, block.shape[0])])[0][None]


def sketch_pass(dosage: da.Array, selected: np.ndarray, scale: Scale, qc: MarkerQC, plan: ComputePlan,
                omega: np.ndarray, progress: bool = True) -> np.ndarray:
    """Y = Σ_{m used} w_m w_mᵀ Ω (n, q) float64 over int8 ``dosage`` (M, n) chunked along markers only,
    ``selected`` (M,) bool."""
    bounds = chunk_bounds(dosage.chunks[0])
    shared = _shared(np.ascontiguousarray(omega, dtype=np.float32))
    task = dask.delayed(_sketch_chunk, pure=True)
    shape = (1, dosage.shape[1], omega.shape[1])
    sketches = da.concatenate([da.from_delayed(task(block, selected[a:b], scale, qc, shared), shape, np.float32)
                               for block, (a, b) in zip(dosage.to_delayed().ravel(), bounds)])
    with dask_progress("sketch pass", enabled=progress):
        return compute(sum_partials(sketches, plan.split_every)[0], plan=plan)[0]


def _moments_chunk(dosage: np.ndarray, selected: np.ndarray, block_of: np.ndarray, start: int, scale: Scale,
                   qc: MarkerQC, partition: Partition, right: np.ndarray, projection: Projection,
                   interior: frozenset[int]) -> dict[str, Any]:
    table = chunk_marker_table(dosage, selected[:, None], scale, qc)
    rows = chunk_rows(table, partition.components(start, start + dosage.shape[0], table[:, 0]), block_of)
    n_components = partition.size
    block = np.ascontiguousarray(dosage[rows.rows])
    centre, inverse_scale = table[rows.rows, 2], table[rows.rows, 3]
    sample_class, membership = projection.sample_classes
    products, class_squares = left_products(block, centre, inverse_scale, right, sample_class, membership.shape[0])
    squares = class_squares @ membership
    probes = products[:, : projection.n_probes * projection.n_patterns]
    n = dosage.shape[1]
    totals = np.zeros((n_components, n, probes.shape[1]), dtype=np.float32)
    grams, edges = {}, {}
    for j, span, parts in rows.blocks():
        sums = np.zeros_like(totals)
        groups = [slice(span.start + p.start, span.start + p.stop) for _, p in parts]
        for (k, _), part in zip(parts, right_products(block, centre, inverse_scale, probes, groups)):
            sums[k] = part
        totals += sums
        if j in interior:
            grams[j] = projection.block_products(sums)
        else:
            edges[j] = sums
    return {"table": table, "rows": rows, "products": products, "squares": squares, "totals": totals[None],
            "grams": grams, "edges": edges}


def _edge_piece(edges: dict[int, np.ndarray], block: int) -> np.ndarray | None:
    """A chunk's part of block ``block``, None when none of its markers in the block is used."""
    return edges.get(block)


def _edge_products(projection: Projection, shape: tuple[int, ...], *pieces: np.ndarray | None) -> np.ndarray:
    found = [piece for piece in pieces if piece is not None]
    return projection.block_products(np.sum(found, axis=0)) if found else np.zeros(shape)


def _gather(n_blocks: int, shape: tuple[int, ...], grams: list[dict[int, np.ndarray]],
            edges: dict[int, np.ndarray], products: list[np.ndarray], squares: list[np.ndarray], tables: list[np.ndarray],
            rows: list[ChunkRows]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[ChunkRows]]:
    out = np.zeros((n_blocks, *shape))  # a block with no used marker contributes nothing
    for found in [*grams, edges]:
        for j, gram in found.items():
            out[j] = gram
    return out, np.concatenate(products), np.concatenate(squares), np.concatenate(tables), rows


@dataclass(frozen=True)
class MomentsPassResult:
    """Pass A: the marker ``table`` (M, 4) and each chunk's used ``rows``; for the used markers in
    the order of the rows, ``products`` (m, w) = w_mᵀR and ``squares`` (m, P); ``totals`` H_k
    (K, n, B·P) float64 and ``block_products`` (J, K, K, P)."""

    table: np.ndarray
    rows: list[ChunkRows]
    products: np.ndarray
    squares: np.ndarray
    totals: np.ndarray
    block_products: np.ndarray

    @property
    def component(self) -> np.ndarray:
        return np.concatenate([r.component for r in self.rows])

    @property
    def block(self) -> np.ndarray:
        return np.concatenate([r.block for r in self.rows])


def moments_pass(dosage: da.Array, selected: np.ndarray, block: np.ndarray, scale: Scale, qc: MarkerQC,
                 partition: Partition, right: np.ndarray, projection: Projection, plan: ComputePlan,
                 progress: bool = True) -> MomentsPassResult:
    """Pass A over int8 ``dosage`` (M, n), chunked along markers only: ``selected`` (M,) bool markers
    before QC, each in jackknife ``block`` (M,) (−1 when not selected), right-hand side R (n, w)."""
    bounds = chunk_bounds(dosage.chunks[0])
    chunks_of_block: dict[int, list[int]] = {}
    for t, (a, b) in enumerate(bounds):
        for j in np.unique(block[a:b][block[a:b] >= 0]):
            chunks_of_block.setdefault(int(j), []).append(t)
    right_shared, projection_shared = _shared(np.ascontiguousarray(right, dtype=np.float32)), _shared(projection)
    task = dask.delayed(_moments_chunk, pure=True)
    outputs = [task(chunk, selected[a:b], block[a:b], a, scale, qc, partition, right_shared, projection_shared,
                    frozenset(j for j, ts in chunks_of_block.items() if ts == [t]))
               for t, (chunk, (a, b)) in enumerate(zip(dosage.to_delayed().ravel(), bounds))]
    item = dask.delayed(getitem, pure=True)
    width, size = projection.n_probes * projection.n_patterns, partition.size
    totals = da.concatenate([da.from_delayed(item(out, "totals"), (1, size, dosage.shape[1], width), np.float32)
                             for out in outputs])
    shape = (size, size, projection.n_patterns)
    piece = dask.delayed(_edge_piece, pure=True)
    edge_products = {j: dask.delayed(_edge_products, pure=True)(projection_shared, shape,
                                                                *[piece(item(outputs[t], "edges"), j) for t in ts])
                     for j, ts in chunks_of_block.items() if len(ts) > 1}
    gathered = dask.delayed(_gather, pure=True, nout=5)(
        int(block.max()) + 1, shape, [item(out, "grams") for out in outputs],
        edge_products, *([item(out, name) for out in outputs] for name in ("products", "squares", "table", "rows")))
    with dask_progress("moments pass", enabled=progress):
        total, (block_products, products, squares, table, rows) = compute(
            sum_partials(totals, plan.split_every)[0], gathered, plan=plan)
    return MomentsPassResult(table, rows, products, squares, total, block_products)


def _cross_chunk(dosage: np.ndarray, table: np.ndarray, rows: ChunkRows, projected: np.ndarray,
                 probes: np.ndarray, n_components: int, n_patterns: int) -> np.ndarray:
    block = np.ascontiguousarray(dosage[rows.rows])
    products = left_products(block, table[rows.rows, 2], table[rows.rows, 3], projected)[0]
    r = block.shape[0]
    return (products.reshape(r, n_components, n_patterns, -1) * probes.reshape(r, 1, n_patterns, -1)).sum(-1)


def cross_pass(dosage: da.Array, table: np.ndarray, rows: list[ChunkRows], projected: np.ndarray,
               probes: np.ndarray, n_components: int, n_patterns: int, plan: ComputePlan,
               progress: bool = True) -> np.ndarray:
    """Pass B: Σ_b (w_mᵀu_b)(w_mᵀ P_p H_l,b) (m, K, P) per used marker in :class:`ChunkRows` order, from the
    projected totals ``projected`` (n, K·B·P), column (l, p, b), and pass A's probe products ``probes`` (m, B·P)."""
    bounds = chunk_bounds(dosage.chunks[0])
    shared = _shared(np.ascontiguousarray(projected, dtype=np.float32))
    offsets = np.cumsum([0, *(chunk.rows.size for chunk in rows)])
    task = dask.delayed(_cross_chunk, pure=True)
    parts = [da.from_delayed(task(block, table[a:b], chunk, shared, probes[offsets[t]:offsets[t + 1]], n_components,
                                  n_patterns), (chunk.rows.size, n_components, n_patterns), np.float64)
             for t, (block, (a, b), chunk) in enumerate(zip(dosage.to_delayed().ravel(), bounds, rows))]
    with dask_progress("cross pass", enabled=progress):
        return compute(da.concatenate(parts), plan=plan)[0]
