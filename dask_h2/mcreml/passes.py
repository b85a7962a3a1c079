"""MC-REML's passes over genotypes held in memory: every conjugate-gradient iteration is one.

The used markers of each chunk are read from the store once (:func:`hold_genotypes`): int8
rows sorted by component, with their centres and inverse scales, persisted on the workers (or
held in this process) for the whole fit. A pass (:func:`product_pass`) multiplies every chunk
with a block of right-hand sides X (n, B) and meets the chunks' results in one tree reduction:

    Z = W X (m, B)                         per chunk (float32 products, :mod:`dask_h2.kinship.streamed`)
    quad[k, b] = Σ_{m∈k} Z_mb²             (K, B) float64: x_bᵀ W_k W_kᵀ x_b
    out = Σ_m w_m (weights ∘ Z)[m]          (n, v) per component or summed, for v chosen columns

The draws pass (:func:`draws_pass`) forms Σ_{m∈k} w_m β_m / √M_k (K, n, T) for standard normal
β drawn per chunk from the fit's seed (the same draws whatever the cluster or retries).
No task holds an n × n or n × M array.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import dask
import dask.bag as db
import numpy as np

from dask_h2.cluster import active_client, compute
from dask_h2.kinship.grm import chunk_marker_table
from dask_h2.kinship.partition import NO_COMPONENT, Partition
from dask_h2.kinship.standardize import USED
from dask_h2.kinship.selection import MarkerQC, Scale
from dask_h2.kinship.streamed import left_products, right_products
from dask_h2.kinship.tasks import chunk_bounds, only, shared, single_threaded_blas
from dask_h2.planning import ComputePlan
from dask_h2.progress import dask_progress


@dataclass(frozen=True, kw_only=True)
class HeldChunk:
    """One chunk's used markers: int8 ``codes`` (r, n) sorted by ``component`` (r,), their ``centre`` and
    ``inverse_scale`` (r,), the chunk's ``index`` and its marker ``table`` (m, 4) (all markers)."""

    codes: np.ndarray
    component: np.ndarray
    centre: np.ndarray
    inverse_scale: np.ndarray
    index: int
    table: np.ndarray

    def groups(self, n_components: int) -> list[slice]:
        """The row range of each component (K slices, empty when the chunk has none of it)."""
        bounds = np.searchsorted(self.component, np.arange(n_components + 1))
        return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def _hold_chunk(dosage: np.ndarray, selected: np.ndarray, start: int, index: int, scale: Scale, qc: MarkerQC,
                partition: Partition) -> HeldChunk:
    table = chunk_marker_table(dosage, selected=selected[:, None], scale=scale, qc=qc)
    component = partition.components(start, start + dosage.shape[0], allele_frequency=table[:, 0])
    rows = np.flatnonzero((table[:, 1] == USED) & (component != NO_COMPONENT))
    rows = rows[np.argsort(component[rows], kind="stable")]
    return HeldChunk(codes=np.ascontiguousarray(dosage[rows]), component=component[rows].astype(np.int64),
                     centre=table[rows, 2], inverse_scale=table[rows, 3], index=index, table=table)


@dataclass(frozen=True, kw_only=True)
class HeldGenotypes:
    """The persisted chunks (Dask delayed objects), the marker ``table`` (M, 4), the used markers'
    ``counts`` M_k (K,) per component and the plan of the passes."""

    chunks: list[Any]
    table: np.ndarray
    counts: np.ndarray
    plan: ComputePlan


def hold_genotypes(dosage: Any, *, selected: np.ndarray, scale: Scale, qc: MarkerQC, partition: Partition,
                   plan: ComputePlan, progress: bool = True) -> HeldGenotypes:
    """Read int8 ``dosage`` (M, n) (a Dask array chunked along markers only) once and keep each chunk's used
    markers in memory (:class:`HeldChunk`): persisted on the workers of the active cluster, else here."""
    bounds = chunk_bounds(dosage.chunks[0])
    task = dask.delayed(_hold_chunk, pure=True)
    chunks = [task(block, selected[a:b], a, t, scale, qc, partition)
              for t, (block, (a, b)) in enumerate(zip(dosage.to_delayed().ravel(), bounds))]
    with dask_progress("reading the genotypes into memory", enabled=progress):
        client = active_client()
        if client is not None:
            chunks = list(client.persist(chunks))
        else:
            chunks = [dask.delayed(c, pure=False) for c in compute(*chunks, plan=plan)]
    tables = compute(*[dask.delayed(_table)(c) for c in chunks], plan=plan)
    table = np.concatenate(tables)
    component = partition.components(0, table.shape[0], allele_frequency=table[:, 0])
    used = (table[:, 1] == USED) & (component != NO_COMPONENT)
    counts = np.bincount(component[used], minlength=partition.size)
    return HeldGenotypes(chunks=chunks, table=table, counts=counts, plan=plan)


def _table(chunk: HeldChunk) -> np.ndarray:
    return chunk.table


@single_threaded_blas
def _chunk_products(chunk: HeldChunk, right: np.ndarray, weights: np.ndarray, columns: np.ndarray,
                    split: bool) -> list[dict[str, np.ndarray]]:
    size = weights.shape[0]
    z = left_products(chunk.codes, centre=chunk.centre, inverse_scale=chunk.inverse_scale, right=right)[0]
    squares = z.astype(np.float64) ** 2
    quad = np.zeros((size, right.shape[1]))
    np.add.at(quad, chunk.component, squares)
    out = np.zeros((size if split else 1, right.shape[0], columns.size), dtype=np.float32)
    if columns.size and chunk.codes.shape[0]:
        left = np.ascontiguousarray(z[:, columns] * weights[chunk.component].astype(np.float32))
        groups = chunk.groups(size) if split else [slice(0, chunk.codes.shape[0])]
        right_products(chunk.codes, centre=chunk.centre, inverse_scale=chunk.inverse_scale, left=left,
                       groups=groups, outputs=list(out))
    return [{"quad": quad, "out": out}]  # a partition of the pass's bag


@single_threaded_blas
def _chunk_draws(chunk: HeldChunk, seed: int, n_draws: int, inverse_root: np.ndarray) -> list[dict[str, np.ndarray]]:
    size = inverse_root.shape[0]
    beta = np.random.default_rng([seed, 3, chunk.index]).standard_normal((chunk.codes.shape[0], n_draws))
    left = np.ascontiguousarray(beta * inverse_root[chunk.component, None], dtype=np.float32)
    out = np.zeros((size, chunk.codes.shape[1], n_draws), dtype=np.float32)
    if chunk.codes.shape[0]:
        right_products(chunk.codes, centre=chunk.centre, inverse_scale=chunk.inverse_scale, left=left,
                       groups=chunk.groups(size), outputs=list(out))
    return [{"quad": np.zeros((size, 0)), "out": out}]


def _add(results: Iterable[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    results = list(results)
    quad, out = results[0]["quad"].copy(), results[0]["out"].astype(np.float64)
    for other in results[1:]:
        quad += other["quad"]
        out += other["out"]
    return {"quad": quad, "out": out}


def _reduce(genotypes: HeldGenotypes, outputs: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    merged = db.from_delayed(outputs).reduction(only, _add, split_every=genotypes.plan.split_every)
    (result,) = compute(merged, plan=genotypes.plan)
    return result["quad"], np.asarray(result["out"], dtype=np.float64)


def product_pass(genotypes: HeldGenotypes, right: np.ndarray, *, weights: np.ndarray, columns: np.ndarray,
                 split: bool) -> tuple[np.ndarray, np.ndarray]:
    """One pass: (quad (K, B) = ‖W_kᵀ x_b‖² for every column x_b of ``right`` X (n, B), out) with out
    (K, n, v) = W_k (weights_k ∘ W_kᵀ X[:, columns]) per component when ``split``, else summed over the
    components (1, n, v); ``weights`` (K, v) float64 scale each component's products per column."""
    x = shared(np.ascontiguousarray(right, dtype=np.float32))
    task = dask.delayed(_chunk_products, pure=True)
    columns = np.asarray(columns, dtype=np.int64)
    outputs = [task(chunk, x, weights, columns, split) for chunk in genotypes.chunks]
    return _reduce(genotypes, outputs)


def draws_pass(genotypes: HeldGenotypes, *, seed: int, n_draws: int) -> np.ndarray:
    """G (K, n, T): g_kt = W_k β_kt / √M_k with β_kt ~ N(0, I_{M_k}) drawn per chunk from ``seed``."""
    task = dask.delayed(_chunk_draws, pure=True)
    inverse_root = 1.0 / np.sqrt(genotypes.counts)
    return _reduce(genotypes, [task(chunk, seed, n_draws, inverse_root) for chunk in genotypes.chunks])[1]
