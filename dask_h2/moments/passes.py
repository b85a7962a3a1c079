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
from dask_h2.kinship.standardize import USED, marker_moments, sum_of_squares
from dask_h2.kinship.selection import MarkerQC, Scale
from dask_h2.kinship.streamed import left_products, right_products
from dask_h2.kinship.tasks import chunk_bounds, only, shared, single_threaded_blas


@dataclass(frozen=True, kw_only=True)
class Projection:
    """The sample groups of a fit over n samples, one set of B probes each: ``masks`` (n, G) bool,
    ``bases`` the orthonormal bases Q_g (n, c_g) of the fixed effects on each group (0 outside it),
    ``n_probes`` B (the probe columns of group g are g·B … (g + 1)·B − 1), and ``weights``: None for
    a group of Haseman–Elston fits (the bilinear form of its traces is P_g), or u (n,) for a PCGC
    trait's group (form P_g D P_g with D = diag(u²), probes P_g U z, and the diagonal a_k of
    P_g A_k P_g needed: its sums hold Σ_m w_m (Q_gᵀw_m)ᵀ, and one shared column Σ_m w_m²).
    ``sources``: the group whose probes each group uses (itself by default); a group on another's
    probes P U_s z (same samples and basis) is a form P D P on them, D = diag(u²) of its own
    weights, for the cross traces tr(D_s A_k D A_l) of two diseases.

    The sums' columns: B probe columns per group on its own probes, then c_g columns for each
    weighted group on its own probes, then (with a weighted group) the squares' column."""

    masks: np.ndarray
    bases: tuple[np.ndarray, ...]
    n_probes: int
    weights: tuple[np.ndarray | None, ...] = ()
    sources: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.weights:
            object.__setattr__(self, "weights", (None,) * self.masks.shape[1])
        if not self.sources:
            object.__setattr__(self, "sources", tuple(range(self.masks.shape[1])))

    @property
    def n_patterns(self) -> int:
        return self.masks.shape[1]

    @cached_property
    def probed(self) -> list[int]:
        """The groups with probes of their own, in the order of their probe columns."""
        return [g for g in range(self.n_patterns) if self.sources[g] == g]

    @property
    def weighted(self) -> list[int]:
        """The weighted groups with probes of their own (PCGC traits), in order."""
        return [g for g in self.probed if self.weights[g] is not None]

    @property
    def n_products(self) -> int:
        """Columns of the sums that are Σ_m w_m L[m] (probes, then the weighted groups' bases)."""
        return self.n_probes * len(self.probed) + sum(self.bases[g].shape[1] for g in self.weighted)

    @property
    def n_columns(self) -> int:
        """Columns of the sums: :attr:`n_products`, and the squares' column when a group is weighted."""
        return self.n_products + (1 if self.weighted else 0)

    @cached_property
    def sample_classes(self) -> tuple[np.ndarray, np.ndarray]:
        """(class (n,) int32 of each sample, membership (C, P) float64 of each class in each pattern):
        samples in the same patterns share a class."""
        membership, sample_class = np.unique(self.masks, axis=0, return_inverse=True)
        return sample_class.astype(np.int32).ravel(), membership.astype(np.float64)

    def columns(self, pattern: int) -> slice:
        """The probe columns of the sums that group ``pattern`` uses (those of its source)."""
        start = self.probed.index(self.sources[pattern]) * self.n_probes
        return slice(start, start + self.n_probes)

    def slot(self, pattern: int) -> slice:
        """The columns of group ``pattern`` in :meth:`projected`."""
        return slice(pattern * self.n_probes, (pattern + 1) * self.n_probes)

    def project(self, values: np.ndarray, pattern: int) -> np.ndarray:
        """P_p v (n, ·) float64: v on the pattern's samples less its part in span(Q_p), 0 elsewhere."""
        out = np.where(self.masks[:, pattern, None], values, 0.0)
        basis = self.bases[pattern]
        return out - basis @ (basis.T @ out)

    def projected(self, sums: np.ndarray) -> np.ndarray:
        """P_p H_k (or P_p D P_p H_k for a weighted group) (K, n, B·P) float64 on each group's probe
        columns, for H (K, n, ·)."""
        out = np.empty((sums.shape[0], sums.shape[1], self.n_probes * self.n_patterns))
        for k in range(sums.shape[0]):
            for p in range(self.n_patterns):
                projected = self.project(sums[k][:, self.columns(p)], p)
                u = self.weights[p]
                out[k][:, self.slot(p)] = projected if u is None else self.project(u[:, None] ** 2 * projected, p)
        return out

    def inner_products(self, sums: np.ndarray, projected: np.ndarray) -> np.ndarray:
        """⟨H_k, G_l⟩ (K, K, P) over each pattern's probe columns, for H (K, n, ·) and G = P_p H or
        P_p D P_p H (K, n, B·P) from :meth:`projected`."""
        out = np.empty((sums.shape[0], projected.shape[0], self.n_patterns))
        for p in range(self.n_patterns):
            left = np.asarray(sums[:, :, self.columns(p)], dtype=np.float64).reshape(sums.shape[0], -1)
            out[:, :, p] = left @ projected[:, :, self.slot(p)].reshape(projected.shape[0], -1).T
        return out

    def self_products(self, sums: np.ndarray) -> np.ndarray:
        """⟨H_k, P_p H_l⟩ (K, K, P) for H (K, n, ·), as ⟨H_k, D_p H_l⟩ − ⟨Q_pᵀH_k, Q_pᵀH_l⟩ (D_p:
        the pattern's samples): the same as :meth:`inner_products` with :meth:`projected`, without
        projecting H (the K × B·P columns of n rows) in float64; ⟨U P_p H_k, U P_p H_l⟩ for a weighted
        group."""
        size = sums.shape[0]
        out = np.empty((size, size, self.n_patterns))
        for p in range(self.n_patterns):
            mask = self.masks[:, p]
            rows = sums[:, :, self.columns(p)] if mask.all() else sums[:, mask][:, :, self.columns(p)]
            values = np.asarray(rows, dtype=np.float64)  # (K, r, B)
            basis = self.bases[p][mask]  # (r, c)
            coefficients = np.stack([basis.T @ values[k] for k in range(size)])  # Q_pᵀH_k (K, c, B)
            if self.weights[p] is not None:
                u = self.weights[p][mask]
                flat = np.stack([u[:, None] * (values[k] - basis @ coefficients[k]) for k in range(size)])
                flat = flat.reshape(size, -1)
                out[:, :, p] = flat @ flat.T
                continue
            flat, coefficients = values.reshape(size, -1), coefficients.reshape(size, -1)
            out[:, :, p] = flat @ flat.T - coefficients @ coefficients.T
        return out

    def diagonals(self, sums: np.ndarray) -> dict[int, np.ndarray]:
        """{weighted group g: a (K, n) float64}, a_k,i = Σ_m (P_g w_m)_i² over the markers of the sums
        H (K, n, ·), i.e. the diagonal of P_g A_k P_g: S − 2 rowsum(Q∘T) + rowsum((Q QᵀT)∘Q), from
        the squares S and T = Σ_m w_m (Q_gᵀw_m)ᵀ (the sums' own columns; 0 outside the group)."""
        out, start = {}, self.n_probes * len(self.probed)
        squares = np.asarray(sums[:, :, -1], dtype=np.float64) if self.weighted else None
        for g in self.weighted:
            basis = self.bases[g]
            stop = start + basis.shape[1]
            a = np.empty((sums.shape[0], sums.shape[1]))
            for k in range(sums.shape[0]):
                t = np.asarray(sums[k][:, start:stop], dtype=np.float64)
                a[k] = np.where(self.masks[:, g], squares[k] - 2.0 * np.sum(basis * t, axis=1)
                                + np.sum((basis @ (basis.T @ t)) * basis, axis=1), 0.0)
            out[g] = a
            start = stop
        return out


@dataclass(frozen=True, kw_only=True)
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


def chunk_rows(table: np.ndarray, component: np.ndarray, *, block: np.ndarray) -> ChunkRows:
    """:class:`ChunkRows` of a chunk from its marker table (m, 4), the ``component`` (m,) of each
    marker (``NO_COMPONENT`` = none) and its jackknife ``block`` (m,): markers of a component
    that pass QC are used."""
    rows = np.flatnonzero((table[:, 1] == USED) & (component != NO_COMPONENT))
    rows = rows[np.lexsort((component[rows], block[rows]))]
    return ChunkRows(rows=rows, component=component[rows], block=block[rows])


@single_threaded_blas
def _moments_chunk(dosage: np.ndarray, selected: np.ndarray, block_of: np.ndarray, start: int, scale: Scale,
                   qc: MarkerQC, partition: Partition, right: np.ndarray, square_right: np.ndarray | None,
                   projection: Projection, scratch: zarr.Array, pieces: dict[int, int]) -> list[dict[str, Any]]:
    moments = marker_moments(dosage)
    table = chunk_marker_table(dosage, selected=selected[:, None], scale=scale, qc=qc, moments=moments)
    rows = chunk_rows(
        table, partition.components(start, start + dosage.shape[0], allele_frequency=table[:, 0]), block=block_of
    )
    order = rows.rows  # the used rows, read in place in their order (no copy of the chunk)
    centre, inverse_scale = table[rows.rows, 2], table[rows.rows, 3]
    sample_class, membership = projection.sample_classes
    if membership.shape[0] == 1:  # every pattern holds all samples: the squares follow from the counts
        products = left_products(dosage, centre=centre, inverse_scale=inverse_scale, right=right,
                                 square_right=square_right, order=order)[0]
        class_squares = sum_of_squares(moments[rows.rows], centre, inverse_scale=inverse_scale)[:, None]
    else:
        products, class_squares = left_products(
            dosage,
            centre=centre,
            inverse_scale=inverse_scale,
            right=right,
            sample_class=sample_class,
            n_classes=membership.shape[0],
            square_right=square_right,
            order=order,
        )
    probes = np.ascontiguousarray(products[:, : projection.n_products])
    totals = np.zeros((partition.size, dosage.shape[1], projection.n_columns), dtype=np.float32)
    sums = np.empty_like(totals)  # one buffer for every block of the chunk
    for j, span, parts in rows.blocks():
        sums.fill(0.0)
        groups = [slice(span.start + p.start, span.start + p.stop) for _, p in parts]
        right_products(
            dosage,
            centre=centre,
            inverse_scale=inverse_scale,
            left=probes,
            groups=groups,
            outputs=[sums[k][:, : projection.n_products] for k, _ in parts],
            squares=[sums[k][:, -1] for k, _ in parts] if projection.weighted else None,
            order=order,
        )
        totals += sums
        scratch[pieces[j]:pieces[j] + 1] = sums[None]  # the chunk's own shape: Zarr stores it without a copy
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
                 pieces: list[dict[int, int]], plan: ComputePlan, square_right: np.ndarray | None = None,
                 progress: bool = True) -> MomentsPassResult:
    """The pass over int8 ``dosage`` (M, n), chunked along markers only: ``selected`` (M,) bool
    markers before QC, each in jackknife ``block`` (M,) (−1 when not selected), right-hand side
    R (n, w) (its first columns those of the sums, :class:`Projection`) and, optionally, S (n, s) for
    the squares' products (W∘W)S; chunk t writes its sums of block j to ``scratch[pieces[t][j]]``
    (K, n, ``projection.n_columns``)."""
    bounds = chunk_bounds(dosage.chunks[0])
    right_shared, projection_shared = shared(np.ascontiguousarray(right, dtype=np.float32)), shared(projection)
    squares_shared = None if square_right is None else shared(np.ascontiguousarray(square_right, dtype=np.float32))
    task = dask.delayed(_moments_chunk, pure=True)
    outputs = [task(chunk, selected[a:b], block[a:b], a, scale, qc, partition, right_shared, squares_shared,
                    projection_shared, scratch, pieces[t])
               for t, (chunk, (a, b)) in enumerate(zip(dosage.to_delayed().ravel(), bounds))]
    merged = db.from_delayed(outputs).reduction(only, _merge_chunks, split_every=plan.split_every)
    with dask_progress("moments pass", enabled=progress):
        (result,) = compute(merged, plan=plan)
    return MomentsPassResult(
        table=np.concatenate(result["table"]),
        rows=result["rows"],
        products=np.concatenate(result["products"]),
        squares=np.concatenate(result["squares"]),
        totals=result["totals"],
    )


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
def _block_products(scratch: zarr.Array, pieces: list[int], projection: Projection, projected: np.ndarray,
                    diagonals: dict[int, np.ndarray]) -> np.ndarray:
    sums = scratch[pieces[0]].astype(np.float64)
    for piece in pieces[1:]:
        sums += scratch[piece]
    local, cross = projection.self_products(sums), projection.inner_products(sums, projected)
    blocks = projection.diagonals(sums)
    for g, u in enumerate(projection.weights):  # Σ_i u_s,i² u_i² a_jk,i a_l,i: the diagonal i = j, left out
        if u is None:
            continue
        source = projection.sources[g]
        weighted = blocks[source] * (projection.weights[source] * u) ** 2
        local[:, :, g] -= projection.n_probes * weighted @ blocks[source].T
        cross[:, :, g] -= projection.n_probes * weighted @ diagonals[source].T
    return np.stack([local, cross])


def block_pass(scratch: zarr.Array, *, pieces: list[list[int]], projection: Projection, projected: np.ndarray,
               diagonals: dict[int, np.ndarray] | None = None, plan: ComputePlan,
               progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(⟨H_jk, P H_jl⟩, ⟨H_jk, P H_l⟩), each (J, K, K, P), from the blocks' sums in ``scratch`` and
    the projected totals ``projected`` P H (K, n, B·P). For a weighted group g (PCGC) the form is
    P D P and B·Σ_i u_i⁴ a_jk,i a_jl,i (resp. a_l,i, ``diagonals[g]`` (K, n) the totals' a) is taken
    off, so that the products over B are the traces with the diagonal i = j removed."""
    size = projected.shape[0]
    shared_projection, shared_totals = shared(projection), shared(projected)
    shared_diagonals = shared(diagonals or {})
    task = dask.delayed(_block_products, pure=True)
    parts = [da.from_delayed(task(scratch, of_block, shared_projection, shared_totals, shared_diagonals),
                             (2, size, size, projection.n_patterns), np.float64)[:, None] for of_block in pieces]
    with dask_progress("jackknife blocks", enabled=progress):
        both = compute(da.concatenate(parts, axis=1), plan=plan)[0]
    return both[0], both[1]
