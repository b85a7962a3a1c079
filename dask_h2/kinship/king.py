"""KING-robust kinship of every pair of samples, blockwise, with no n × n array anywhere.

plink2's estimator (``--make-king-table``; Manichaikul et al. 2010, between-family form), over the
markers where both samples of a pair have a call:

    kinship = 0.5 − (4·IBS0 + h_i + h_j) / (4·(HETHET + min(h_i, h_j)))

with HETHET the markers where both are heterozygous, IBS0 those where they are opposite homozygotes
and h_i those where i is heterozygous and j homozygous. The integers are exact and the formula is
evaluated in that form in float64, so every value is plink2's to the last bit (a pair without a
heterozygote is −inf, or nan without a difference either).

The counts are matrix products, like K's: with per sample and marker n = [called], x = g·n,
q = g²·n and h = [g = 1],

    S  = 4·IBS0 + h_i + h_j = Σ q_i n_j + Σ n_i q_j − 2 Σ x_i x_j
    Hi = HETHET + h_i       = Σ h_i n_j,      Hj = HETHET + h_j = Σ n_i h_j

One float32 GEMM (exact: each partial sum is an integer below 2²⁴ for chunks of fewer than 2²²
markers; numpy's, which runs beside the other tasks' threads, not scipy.linalg.blas's, which holds
the GIL and ran the tasks' products one at a time; numpy's SYRK on a diagonal tile) gives
Σ x_i x_j; the other sums are the column totals minus the few calls missing in the other sample
(Σ q_i n_j = Σ q_i − Σ_{j missing} q_i), added by a kernel over each sample's missing markers.

A first pass writes the calls once in sample tiles of equal widths into a scratch array
(:func:`scratch_layout`). Then a task computes one tile of pairs (sample tiles I ≥ J) over all
marker chunks of its two tiles only, and returns only the pairs asked for: those at or above the
table's filter and those above the cutoff, with NSNP, HETHET and IBS0 from a second pass over the
few rows and columns they involve. Tiles are computed a band of tile rows at a time and their
pairs yielded in plink2's order.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import dask
import dask.array as da
import numpy as np
import zarr
from distributed import Client
from zarr.storage import MemoryStore

from dask_h2.cluster import active_client, compute, using
from dask_h2.errors import output_errors
from dask_h2.kinship.grm import merged_chunk, sample_columns
from dask_h2.kinship.selection import Selection, mask_digest, sample_mask, variant_mask
from dask_h2.kinship.standardize import compiled
from dask_h2.planning import KingPlan, OverBudget, king_plan
from dask_h2.progress import dask_progress
from dask_h2.scratch import scratch_array
from dask_h2.store import cached_group, genotypes_key, mark_group_complete, open_store, read_strings

KING_GROUP = "king_cutoff"
log = logging.getLogger("dask_h2")

MAX_GEMM_MARKERS = (1 << 22) - 1  # float32 sums of products ≤ 4 stay exact integers below 2²⁴


@dataclass(frozen=True, kw_only=True)
class KingPairs:
    """Pairs of samples (r,) by position among the samples analysed, ``first`` > ``second`` (plink2's
    ID1 is the later sample), with their jointly called markers ``n_markers`` (NSNP), the counts
    ``hethet`` and ``ibs0`` over them, ``kinship`` (float64) and ``related``: kinship above the cutoff."""

    first: np.ndarray
    second: np.ndarray
    n_markers: np.ndarray
    hethet: np.ndarray
    ibs0: np.ndarray
    kinship: np.ndarray
    related: np.ndarray

    def subset(self, rows: np.ndarray | slice) -> "KingPairs":
        """The pairs at ``rows`` (bool, positions or a slice)."""
        return KingPairs(**{name: getattr(self, name)[rows] for name in PAIR_FIELDS})


PAIR_FIELDS = ("first", "second", "n_markers", "hethet", "ibs0", "kinship", "related")


def _prepare_calls(g, x, qh):
    """x = g·n (float32) and [q | h] (int8) of a block g (m, b); returns each sample's missing count."""
    m, b = g.shape
    missing = np.zeros(b, np.int64)
    for r in range(m):
        for c in range(b):
            v = g[r, c]
            if v >= 0:
                x[r, c] = v
                qh[r, c] = v * v
                qh[r, b + c] = 1 if v == 1 else 0
            else:
                x[r, c] = 0.0
                qh[r, c] = 0
                qh[r, b + c] = 0
                missing[c] += 1
    return missing


def _missing_lists(g, missing):
    """CSC-style lists (indptr (b + 1,), markers) of each sample's missing calls in the block g (m, b)."""
    m, b = g.shape
    indptr = np.zeros(b + 1, np.int64)
    for c in range(b):
        indptr[c + 1] = indptr[c] + missing[c]
    markers = np.empty(indptr[b], np.int64)
    fill = indptr[:b].copy()
    for r in range(m):
        for c in range(b):
            if g[r, c] < 0:
                markers[fill[c]] = r
                fill[c] += 1
    return indptr, markers


def _add_missing_sums(qh, indptr, markers, out):
    """out[j, :] += Σ over the markers missing in sample j (lists indptr, markers) of the rows qh[m, :]."""
    width = qh.shape[1]
    for j in range(indptr.shape[0] - 1):
        for t in range(indptr[j], indptr[j + 1]):
            r = markers[t]
            for c in range(width):
                out[j, c] += qh[r, c]


def _tile_kinship(xx, totals_rows, miss_rows, totals_cols, miss_cols, out):
    """out[a, b] = plink2's kinship of row sample a and column sample b from the tile's sums (see the module
    docstring): Σ x x (xx, float64 of exact integers), [Σq | Σh] totals of each side (2, ·) and each side's
    [q | h] summed over the other's missing calls (miss_rows (c, 2r), miss_cols (r, 2c))."""
    r, c = out.shape
    for a in range(r):
        for b in range(c):
            s = totals_rows[0, a] - miss_rows[b, a] + totals_cols[0, b] - miss_cols[a, b] - 2 * np.int64(
                np.rint(xx[a, b]))
            smaller = min(totals_rows[1, a] - miss_rows[b, r + a], totals_cols[1, b] - miss_cols[a, c + b])
            if smaller > 0:
                out[a, b] = 0.5 - np.float64(s) / np.float64(4 * smaller)
            else:
                out[a, b] = -np.inf if s > 0 else np.nan


_tile_kinship = compiled(_tile_kinship)
_prepare_calls = compiled(_prepare_calls)
_missing_lists = compiled(_missing_lists)
_add_missing_sums = compiled(_add_missing_sums)


@dataclass
class _Side:
    """One tile side's chunk: x (m, b) float32, [q | h] (m, 2b) int8, missing-call lists and counts."""

    x: np.ndarray
    qh: np.ndarray
    indptr: np.ndarray
    markers: np.ndarray
    missing: np.ndarray

    @classmethod
    def of(cls, g: np.ndarray) -> "_Side":
        g = np.ascontiguousarray(g, np.int8)
        x = np.empty(g.shape, np.float32)
        qh = np.empty((g.shape[0], 2 * g.shape[1]), np.int8)
        missing = _prepare_calls(g, x, qh)
        indptr, markers = _missing_lists(g, missing)
        return cls(x=x, qh=qh, indptr=indptr, markers=markers, missing=missing)

    def add_missing_sums(self, other: "_Side", out: np.ndarray) -> None:
        """out (other's b, 2·b) int32 += for each sample of ``other``, Σ of this side's [q | h] over its missing
        markers."""
        if other.markers.size:
            _add_missing_sums(self.qh, other.indptr, other.markers, out)


def tile_bounds(n_samples: int, tile: int) -> list[slice]:
    """Sample tiles of equal widths (within one, at most ``tile``) covering ``n_samples`` positions.

    Examples
    --------
    >>> [(b.start, b.stop) for b in tile_bounds(10, 4)]
    [(0, 4), (4, 8), (8, 10)]
    >>> [(b.start, b.stop) for b in tile_bounds(9, 4)]
    [(0, 3), (3, 6), (6, 9)]
    """
    count = -(-n_samples // tile)
    width = -(-n_samples // max(count, 1))
    return [slice(start, min(start + width, n_samples)) for start in range(0, n_samples, width)]


def scratch_layout(dosage: zarr.Array, *, plan: KingPlan, n_samples: int) -> dict[str, Any]:
    """``shape`` (tiles, M, width), ``chunks`` (1, the plan's marker chunk, width) and ``dtype`` (int8) of the
    scratch in which :func:`king_pairs` writes the calls of ``n_samples`` samples a sample tile at a time
    (n·M bytes)."""
    bounds = tile_bounds(n_samples, plan.tile)
    width = bounds[0].stop if bounds else 1
    chunk = merged_chunk(plan.chunk_markers, dosage.chunks[0])
    return {"shape": (len(bounds), dosage.shape[0], width), "chunks": (1, chunk, width), "dtype": "int8"}


def _in_tiles(block: np.ndarray, bounds: list[slice], width: int) -> np.ndarray:
    """The calls (m, n) of a marker chunk as (tiles, m, width), the last tile padded with missing calls."""
    out = np.full((len(bounds), block.shape[0], width), -1, np.int8)
    for index, bound in enumerate(bounds):
        out[index, :, : bound.stop - bound.start] = block[:, bound]
    return out


def _write_tiles(dosage: zarr.Array, scratch: zarr.Array, samples: np.ndarray, bounds: list[slice],
                 plan: KingPlan) -> None:
    """One pass over the store: each chunk's calls of the ``samples`` (positions) into ``scratch`` by sample tile,
    so that a tile of pairs reads its two tiles' calls only (not every sample's, decoded again for each tile)."""
    mask = np.zeros(dosage.shape[1], bool)
    mask[samples] = True
    columns = sample_columns(dosage, mask, chunk_markers=scratch.chunks[1])
    width = scratch.shape[2]
    tiles = columns.map_blocks(_in_tiles, bounds, width, new_axis=0, dtype=np.int8,
                               chunks=((len(bounds),), columns.chunks[0], (width,)))
    compute(da.store(tiles.rechunk(scratch.chunks), scratch, lock=False, compute=False), plan=plan)


def _read(scratch: zarr.Array, tile: int, start: int, stop: int, width: int, markers: np.ndarray) -> np.ndarray:
    """The int8 calls (m, ``width``) of sample ``tile`` at the variants ``start:stop`` that are ``markers`` (bool)."""
    block = scratch[tile, start:stop, :width]
    return block if markers.all() else block[markers]


def _chunks(n_markers: int, chunk: int, variants: np.ndarray) -> Iterator[tuple[int, int]]:
    for start in range(0, n_markers, chunk):
        stop = min(start + chunk, n_markers)
        if variants[start:stop].any():
            yield start, stop


def _tile_pairs(scratch: zarr.Array, variants: np.ndarray, bounds: list[slice], row_tile: int, col_tile: int,
                chunk: int, table: bool, table_filter: float | None, cutoff: float | None) -> KingPairs:
    """The pairs of the tile (``row_tile``, ``col_tile``) of sample ``bounds`` (row ≥ column; on the diagonal only
    row > column) of the ``table``, at or above ``table_filter`` (None: every pair; nan kept, as plink2), and those
    above ``cutoff`` (None: none)."""
    diagonal = row_tile == col_tile
    rows, cols = bounds[row_tile], bounds[col_tile]
    r, c = rows.stop - rows.start, cols.stop - cols.start
    xx = np.zeros((r, c))
    miss_rows = np.zeros((c, 2 * r), np.int32)  # Σ over j's missing calls of [q_i | h_i]
    miss_cols = miss_rows if diagonal else np.zeros((r, 2 * c), np.int32)  # Σ over i's missing of [q_j | h_j]
    totals_rows, totals_cols = np.zeros((2, r), np.int64), np.zeros((2, c), np.int64)
    missing_rows, missing_cols = np.zeros(r, np.int64), np.zeros(c, np.int64)
    n_markers = 0
    for start, stop in _chunks(scratch.shape[1], chunk, variants):
        first_block = _read(scratch, row_tile, start, stop, r, variants[start:stop])
        second_block = first_block if diagonal else _read(scratch, col_tile, start, stop, c, variants[start:stop])
        n_markers += first_block.shape[0]
        for s in range(0, first_block.shape[0], MAX_GEMM_MARKERS):
            first = _Side.of(first_block[s:s + MAX_GEMM_MARKERS])
            second = first if diagonal else _Side.of(second_block[s:s + MAX_GEMM_MARKERS])
            xx += first.x.T @ second.x  # numpy's BLAS call lets the other tasks' threads run (scipy's holds the GIL)
            first.add_missing_sums(second, miss_rows)
            if not diagonal:
                second.add_missing_sums(first, miss_cols)
            totals_rows += first.qh.reshape(-1, 2, r).sum(axis=0, dtype=np.int64)
            totals_cols += second.qh.reshape(-1, 2, c).sum(axis=0, dtype=np.int64)
            missing_rows += first.missing
            missing_cols += second.missing
    kinship = np.empty((r, c))
    _tile_kinship(xx, totals_rows, miss_rows, totals_cols, miss_cols, kinship)
    related = kinship > cutoff if cutoff is not None else np.zeros(kinship.shape, bool)
    if not table:
        keep = related.copy()
    else:
        keep = np.ones(kinship.shape, bool) if table_filter is None else ~(kinship < table_filter)
        keep |= related
    if diagonal:
        keep &= np.tri(r, c, -1, dtype=bool)
    i, j = np.nonzero(keep)
    hethet, joint_missing = _pair_counts(scratch, variants, row_tile, col_tile, r, c, chunk, i, j)
    nsnp = n_markers - missing_rows[i] - missing_cols[j] + joint_missing
    s = (totals_rows[0, i] - miss_rows[j, i] + totals_cols[0, j] - miss_cols[i, j]
         - 2 * np.rint(xx[i, j]).astype(np.int64))
    het_i = totals_rows[1, i] - miss_rows[j, r + i] - hethet  # i het, j hom
    het_j = totals_cols[1, j] - miss_cols[i, c + j] - hethet
    return KingPairs(first=i + rows.start, second=j + cols.start, n_markers=nsnp, hethet=hethet,
                     ibs0=(s - het_i - het_j) // 4, kinship=kinship[i, j], related=related[i, j])


def _pair_counts(scratch: zarr.Array, variants: np.ndarray, row_tile: int, col_tile: int, r: int, c: int,
                 chunk: int, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """HETHET and the markers missing in both (r,) int64 of the pairs (i, j) of the tile (positions in its row
    and column tiles of widths r and c), by products over the distinct rows and columns they involve only
    (a second pass over the chunks)."""
    if i.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    row_set, row_at = np.unique(i, return_inverse=True)
    col_set, col_at = np.unique(j, return_inverse=True)
    hethet = np.zeros((row_set.size, col_set.size))
    both_missing = np.zeros_like(hethet)
    for start, stop in _chunks(scratch.shape[1], chunk, variants):
        first_block = _read(scratch, row_tile, start, stop, r, variants[start:stop])[:, row_set]
        second_block = _read(scratch, col_tile, start, stop, c, variants[start:stop])[:, col_set]
        for s in range(0, first_block.shape[0], MAX_GEMM_MARKERS):
            first, second = first_block[s:s + MAX_GEMM_MARKERS], second_block[s:s + MAX_GEMM_MARKERS]
            hethet += (first == 1).astype(np.float32).T @ (second == 1).astype(np.float32)
            both_missing += (first < 0).astype(np.float32).T @ (second < 0).astype(np.float32)
    return (np.rint(hethet[row_at, col_at]).astype(np.int64), np.rint(both_missing[row_at, col_at]).astype(np.int64))


def king_pairs(dosage: zarr.Array, *, plan: KingPlan, scratch: zarr.Array, samples: np.ndarray | None = None,
               variants: np.ndarray | None = None, table: bool = True, table_filter: float | None = None,
               cutoff: float | None = None) -> Iterator[KingPairs]:
    """The pairs of samples asked for, in plink2's ``.kin0`` order (by ``first``, then ``second``), a band
    of tile rows at a time.

    Parameters
    ----------
    dosage : zarr.Array
        int8 (M markers, N samples), −1 = missing, as in the store.
    plan : KingPlan
        Tile size, marker chunk and threads (:func:`dask_h2.planning.king_plan`).
    scratch : zarr.Array
        Of :func:`scratch_layout`'s shape, chunks and dtype, that every task can read and write (on a cluster
        in the store: :func:`dask_h2.scratch.scratch_array`): the samples' calls are written there once,
        a sample tile at a time, and each tile of pairs reads its own two.
    samples : numpy.ndarray, optional
        Positions (n,) ascending of the samples analysed (default: all).
    variants : numpy.ndarray, optional
        bool (M,): the markers used (default: all; plink2 leaves out chrX, chrY and chrMT).
    table : bool
        List the pairs of the kinship table (else only the related ones).
    table_filter : float, optional
        The table's pairs are those whose kinship is not below it (plink2's ``--king-table-filter``: ≥, nan
        kept); None: every pair.
    cutoff : float, optional
        Pairs whose kinship is above it (``related``), listed whatever the filter.

    Yields
    ------
    KingPairs
        The pairs of a band of tile rows (positions among ``samples``).

    Examples
    --------
    >>> import zarr
    >>> from dask_h2.planning import KingPlan
    >>> g = np.random.default_rng(0).integers(0, 3, (200, 6)).astype(np.int8)
    >>> g[:, 5] = g[:, 4]  # a duplicate
    >>> z = zarr.create_array(store={}, data=g, chunks=(50, 6))
    >>> plan = KingPlan(tile=4, chunk_markers=100, dask_threads=1, blas_threads=1)
    >>> scratch = zarr.create_array(store={}, **scratch_layout(z, plan=plan, n_samples=6))
    >>> bands = king_pairs(z, plan=plan, scratch=scratch, table=False, cutoff=0.3)
    >>> [(p.first.tolist(), p.second.tolist(), p.kinship.tolist()) for p in bands]
    [([5], [4], [0.5])]
    """
    samples = np.arange(dosage.shape[1]) if samples is None else np.asarray(samples)
    variants = np.ones(dosage.shape[0], bool) if variants is None else np.asarray(variants, bool)
    bounds = tile_bounds(samples.size, plan.tile)
    layout = scratch_layout(dosage, plan=plan, n_samples=samples.size)
    if (scratch.shape, scratch.chunks, scratch.dtype) != (layout["shape"], layout["chunks"], layout["dtype"]):
        raise ValueError(f"scratch: {layout['dtype']} of shape {layout['shape']} in chunks {layout['chunks']} "
                         f"expected, not {scratch.dtype} {scratch.shape} in {scratch.chunks}")
    if isinstance(scratch.store, MemoryStore) and active_client() is not None:
        raise ValueError("scratch: in this process's memory, which the cluster's workers would write copies of")
    _write_tiles(dosage, scratch, samples, bounds, plan)
    chunk = merged_chunk(plan.chunk_markers, dosage.chunks[0])
    shared_variants, shared_bounds = dask.delayed(variants, pure=True), dask.delayed(bounds, pure=True)
    tile = dask.delayed(_tile_pairs, pure=True)
    # the table's pairs a band of tile rows at a time: every pair in bands of at least 4 tasks per thread;
    # those a filter keeps (a few thousand a tile, but 10.8 million in all at 100,000 samples and 2,000
    # markers) in bands of at least 16, whose ends leave a thread idle less often; only the related: all at once
    per_band = (4 if table_filter is None else 16) * plan.dask_threads
    band: list[int] = []
    for index in range(len(bounds)):
        band.append(index)
        if (not table or sum(i + 1 for i in band) < per_band) and index + 1 < len(bounds):
            continue
        tasks = [tile(scratch, shared_variants, shared_bounds, i, j, chunk, table, table_filter, cutoff) for i in band
                 for j in range(i + 1)]
        yield _in_plink_order(compute(*tasks, plan=plan))
        band = []

def _in_plink_order(parts: tuple[KingPairs, ...]) -> KingPairs:
    fields = {name: np.concatenate([getattr(p, name) for p in parts]) for name in PAIR_FIELDS}
    order = np.lexsort((fields["second"], fields["first"]))
    return KingPairs(**{name: values[order] for name, values in fields.items()})


def prune_relatives(first: np.ndarray, second: np.ndarray, *, n_samples: int) -> np.ndarray:
    """The samples plink2's ``--king-cutoff`` removes (bool (n,)), given the related pairs (first, second).

    plink2's greedy order (``KinshipPruneDestructive``): while a pair remains, if some sample has exactly
    one relative left, the relative of the first such sample (in sample order) is removed; otherwise the
    first sample with the most relatives left is. Each removal drops that sample's pairs.

    Examples
    --------
    >>> prune_relatives(np.array([1, 3, 4]), np.array([0, 0, 0]), n_samples=5).nonzero()[0].tolist()  # a star
    [0]
    >>> prune_relatives(np.array([2]), np.array([1]), n_samples=3).nonzero()[0].tolist()  # a pair: the later sample
    [2]
    """
    relatives: list[set[int]] = [set() for _ in range(n_samples)]
    for a, b in zip(np.asarray(first).tolist(), np.asarray(second).tolist()):
        if a != b:
            relatives[a].add(b)
            relatives[b].add(a)
    degree = np.fromiter(map(len, relatives), np.int64, n_samples)
    removed = np.zeros(n_samples, bool)
    while True:
        left = np.flatnonzero(degree)
        if left.size == 0:
            return removed
        single = left[degree[left] == 1]
        prune = next(iter(relatives[single[0]])) if single.size else int(left[np.argmax(degree[left])])
        for other in relatives[prune]:
            relatives[other].discard(prune)
            degree[other] -= 1
        relatives[prune] = set()
        degree[prune] = 0
        removed[prune] = True


def grm_cutoff_removed(kinship: zarr.Array | np.ndarray, cutoff: float, *, rows: int = 2048) -> np.ndarray:
    """The samples GCTA's ``--grm-cutoff`` removes from K (n, n) (bool (n,)): :func:`gcta_cutoff` of the pairs
    with K_ij > ``cutoff`` (i > j), found ``rows`` rows of K at a time.

    Examples
    --------
    >>> K = np.array([[1.0, 0.3, 0.0], [0.3, 1.0, 0.02], [0.0, 0.02, 1.0]])
    >>> grm_cutoff_removed(K, 0.05).nonzero()[0].tolist()
    [1]
    """
    first, second = [], []
    for start in range(0, kinship.shape[0], rows):
        block = np.asarray(kinship[start:start + rows, :start + rows])
        i, j = np.nonzero(np.tril(block > cutoff, start - 1))
        first.append(i + start)
        second.append(j)
    return gcta_cutoff(np.concatenate(first), np.concatenate(second), n_samples=kinship.shape[0])


def gcta_cutoff(first: np.ndarray, second: np.ndarray, *, n_samples: int) -> np.ndarray:
    """The samples GCTA's ``--grm-cutoff`` removes (bool (n,)), given the pairs (first > second) with K above it.

    GCTA's rule (``gcta::rm_cor_indi``): count each sample's pairs; from every pair remove the later sample,
    or the earlier one when it has more pairs. One pass, not greedy: a removed sample's other pairs still
    remove one of theirs.

    Examples
    --------
    >>> gcta_cutoff(np.array([1, 3, 4]), np.array([0, 0, 0]), n_samples=5).nonzero()[0].tolist()
    [0]
    """
    first, second = np.asarray(first, np.int64), np.asarray(second, np.int64)
    counts = np.bincount(np.concatenate([first, second]), minlength=n_samples)
    removed = np.zeros(n_samples, bool)
    removed[np.where(counts[first] < counts[second], second, first)] = True
    return removed



@dataclass(frozen=True, kw_only=True)
class Relatives:
    """The samples that ``cutoff`` removes (bool over the store's samples), from ``n_pairs`` pairs of relatives
    (kinship above it) among the samples kept."""

    removed: np.ndarray
    cutoff: float
    n_pairs: int

    @property
    def n_removed(self) -> int:
        return int(self.removed.sum())


def plan_for(store: str | Path, n_samples: int, *, memory_limit: int | None) -> KingPlan:
    """The :class:`~dask_h2.planning.KingPlan` of ``n_samples`` of the store, an over-budget a
    :class:`~dask_h2.errors.ParameterError` naming ``memory_limit``."""
    try:
        return king_plan(n_samples, memory_limit=memory_limit, store_chunk=open_store(store)["call_dosage"].chunks[0])
    except OverBudget as exc:
        raise exc.parameter_error(memory_limit=memory_limit) from None


def relatives_of_store(store: str | Path, selection: Selection, *, memory_limit: int | None = None,
                       client: Client | None = None, progress: bool = True) -> Relatives | None:
    """The relatives ``selection.king_cutoff`` removes from the samples ``selection`` keeps (None without a
    cutoff), computed once and kept in ``store/king_cutoff`` with the key of its inputs (the cutoff, the
    samples and markers, the genotypes). KING uses every marker ``selection`` keeps before QC (plink2
    applies no filter of its own); the store records no chromosome, so leave out chrX, chrY and chrMT
    with ``exclude`` as plink2 does."""
    if selection.king_cutoff is None:
        return None
    root = open_store(store)
    samples = sample_mask(read_strings(root, "sample_id"), selection)
    variants = variant_mask(read_strings(root, "variant_id"), selection)
    key = {"king_cutoff": selection.king_cutoff, "samples_sha1": mask_digest(samples),
           "variants_sha1": mask_digest(variants), "genotypes": genotypes_key(root)}
    with cached_group(store, KING_GROUP, key=key) as cache:
        if cache.reusable is not None:
            log.info(f"reusing the relatives in {store}/{KING_GROUP}: same cutoff, samples and markers")
            return Relatives(removed=cache.reusable["removed"][:], cutoff=selection.king_cutoff,
                             n_pairs=int(cache.reusable.attrs["n_pairs"]))
        positions = np.flatnonzero(samples)
        plan = plan_for(store, positions.size, memory_limit=memory_limit)
        layout = scratch_layout(root["call_dosage"], plan=plan, n_samples=positions.size)
        with using(client), dask_progress("KING-robust kinship", progress), \
                scratch_array(store, **layout) as scratch:
            bands = list(king_pairs(root["call_dosage"], plan=plan, scratch=scratch, samples=positions,
                                    variants=variants, table=False, cutoff=selection.king_cutoff))
        first, second = (np.concatenate([getattr(band, name) for band in bands]) for name in ("first", "second"))
        removed = np.zeros(samples.size, bool)
        removed[positions[prune_relatives(first, second, n_samples=positions.size)]] = True
        with output_errors(f"{store}/{KING_GROUP}", "writing the relatives into the store"):
            group = cache.create(n_pairs=int(first.size), n_removed=int(removed.sum()))
            group.create_array("removed", data=removed)
            mark_group_complete(group)
        log.info(f"king_cutoff {selection.king_cutoff}: {int(removed.sum())} of {positions.size} samples removed "
                 f"({first.size} pairs of relatives above it)")
        return Relatives(removed=removed, cutoff=selection.king_cutoff, n_pairs=int(first.size))


def analysed_samples(store: str | Path, selection: Selection, *, memory_limit: int | None = None,
                     client: Client | None = None, progress: bool = True) -> tuple[np.ndarray, Relatives | None]:
    """bool (N,): the store's samples an analysis uses (``keep``/``remove``, then the relatives
    ``king_cutoff`` removes), and those :class:`Relatives` (None without a cutoff)."""
    samples = sample_mask(read_strings(open_store(store), "sample_id"), selection)
    relatives = relatives_of_store(store, selection, memory_limit=memory_limit, client=client, progress=progress)
    return (samples if relatives is None else samples & ~relatives.removed), relatives


def describe_relatives(relatives: Relatives | None) -> dict:
    """What a report says of the relatives removed (nothing without a cutoff)."""
    if relatives is None:
        return {}
    return {"king_cutoff": relatives.cutoff, "n_related_pairs": relatives.n_pairs,
            "n_relatives_removed": relatives.n_removed}
