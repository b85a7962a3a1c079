"""Memory plans: how each pass over the genotypes uses a worker's (or this machine's) memory
and cores. Every peak-memory model of dask-h2 is here, one per pass (bytes; n samples,
M markers in chunks of m, fan-in s, t tasks in flight):

- **untiled GRM** (:class:`ComputePlan`, :func:`dask_h2.kinship.grm.kinship`): each task holds the
  int8 chunk (n·m), the float32 standardization of ``STANDARDIZE_BLOCK`` markers (4·n·b) and
  its float32 SYRK result (4·n²). The tree reduction (in-place adds) of the ⌈M/m⌉ results,
  run depth first, holds at most :func:`tree_buffers` = d·(s − 1) + 1 float64 n × n buffers
  (8·n²), d = ⌈log_s ⌈M/m⌉⌉. With P parts (``grm --partition``) every n × n term is P of them.
- **tiled GRM** (:class:`TilePlan`, :mod:`dask_h2.kinship.tiled`): per task the int8 chunk and its
  moments (3·m·n), two float32 tile columns (10·m·t) and per part 28·t² (product, float64
  accumulator, finished tile); never n².
- **KING-robust kinship** (:class:`KingPlan`, :mod:`dask_h2.kinship.king`): first a pass that
  writes each chunk's calls in sample tiles to a scratch (per task the chunk read, its samples
  and their tiles: 3·n·m), then per task of pairs the two tile columns read from the scratch and
  their float32/int8 forms (16·m·t) and per pair of the tile its sums, GEMM result, kinship and
  masks (48·t²); never n². The pairs asked for (a filtered table, the related pairs) come back to
  the driver, about 60 bytes each.
- **moments passes** (:func:`moments_peak_bytes`, :mod:`dask_h2.moments.passes`): chunks, thin
  products and n-row float32 sums; never n².
- **MC-REML** (:func:`mcreml_peak_bytes`, :mod:`dask_h2.mcreml`): the int8 genotypes held in memory
  for all its passes, plus the moments passes' kind of thin products; never n².
- **exact path's driver** (:func:`exact_path_bytes`): K, LAPACK's workspace and the
  eigenvectors, 32·n².

The limit is this process's ``--memory-limit`` (default 2 GiB) locally; on a cluster it is
per worker, capped by the smallest worker's budget (:func:`budget`).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import psutil
from dask.utils import format_bytes

from dask_h2.cluster import active_client, worker_budget
from dask_h2.errors import NAMED, ParameterError

DEFAULT_MEMORY_LIMIT = 2 * 2**30  # bytes: leaves room for the eigendecomposition within 2.5 GB
MIN_CHUNK, MAX_CHUNK, CHUNK_MULTIPLE = 256, 32768, 256
STANDARDIZE_BLOCK = 2048  # markers standardized at a time within a chunk (see dask_h2.kinship.grm)
TASK_BYTES = 128 * 2**20  # int8 genotypes per task of the moments passes (rhe_scale.py: faster than 64 MiB)
MIN_TILE = 256
FAN_INS = (8, 4, 3, 2)
KING_TILE_BYTES = 48  # per pair of a KING tile: Σxx (float64), the GEMM's float32, 2 × 2 int32 sums, kinship, masks


@dataclass(frozen=True, kw_only=True)
class Budget:
    """Where a pass runs: ``limit`` bytes per worker (or locally), ``threads`` tasks at once
    there (None: the plan chooses), ``cores`` for them, ``total_threads`` over the cluster, and
    whether a ``cluster`` (an active ``distributed`` client) runs it."""

    limit: int
    threads: int | None
    cores: int
    total_threads: int
    cluster: bool


def budget(memory_limit: int | None = None) -> Budget:
    """The :class:`Budget` for ``memory_limit`` (default 2 GiB) on this machine, or on the
    smallest worker of the active cluster (its memory budget, see
    :func:`dask_h2.cluster.worker_budget`, caps the limit)."""
    client = active_client()
    limit = memory_limit or DEFAULT_MEMORY_LIMIT
    if client is None:
        cores = os.cpu_count() or 1
        return Budget(limit=limit, threads=None, cores=cores, total_threads=cores, cluster=False)
    worker_bytes, threads = worker_budget(client)
    return Budget(limit=min(limit, worker_bytes or DEFAULT_MEMORY_LIMIT), threads=threads, cores=threads,
                  total_threads=sum(client.nthreads().values()), cluster=True)


def tree_buffers(n_markers: int, chunk_markers: int, *, split_every: int) -> int:
    """Partial sums a depth-first tree reduction of the ⌈M/m⌉ chunk results holds at most."""
    chunks = max(1, -(-n_markers // chunk_markers))
    depth = math.ceil(math.log(chunks, split_every) - 1e-9) if chunks > 1 else 0
    return depth * (split_every - 1) + 1


@dataclass(frozen=True, kw_only=True)
class ComputePlan:
    """``chunk_markers`` per task, ``split_every`` partials per reduction step, and
    ``dask_threads`` × ``blas_threads`` = the cores used; ``parts`` K_k at once."""

    chunk_markers: int
    split_every: int
    dask_threads: int
    blas_threads: int
    parts: int = 1

    def peak_bytes(self, n_samples: int, n_markers: int) -> int:
        """Predicted peak (bytes) of the untiled GRM of ``n_samples`` from ``n_markers`` (module docstring)."""
        n, m, squares = n_samples, self.chunk_markers, self.parts * n_samples**2
        task = n * m + 4 * n * min(m, STANDARDIZE_BLOCK) + 4 * squares
        return self.dask_threads * task + tree_buffers(n_markers, m, split_every=self.split_every) * 8 * squares


@dataclass(frozen=True, kw_only=True)
class TilePlan:
    """``tile`` samples per tile side, ``chunk_markers`` read per step of a tile task, and
    ``dask_threads`` tasks at once per worker (or locally), each with ``blas_threads``."""

    tile: int
    chunk_markers: int
    dask_threads: int
    blas_threads: int
    parts: int = 1

    def peak_bytes(self, n_samples: int) -> int:
        """Predicted peak of a worker (bytes) of the tiled GRM (module docstring)."""
        n, m, t = n_samples, self.chunk_markers, self.tile
        return self.dask_threads * (3 * n * m + 10 * m * t + 28 * self.parts * t * t)


@dataclass(frozen=True, kw_only=True)
class KingPlan:
    """KING-robust kinship (:mod:`dask_h2.kinship.king`): ``tile`` samples per tile side, ``chunk_markers``
    read per step of a tile task, ``dask_threads`` tasks at once per worker (or locally), each with
    ``blas_threads``."""

    tile: int
    chunk_markers: int
    dask_threads: int
    blas_threads: int

    def peak_bytes(self, n_samples: int) -> int:
        """Predicted peak of a worker (bytes) of KING: the larger of the pass that writes a chunk's calls in
        sample tiles (the chunk read, its samples taken, their tiles: 3·n·m) and the tiles of pairs."""
        n, m, t = n_samples, self.chunk_markers, self.tile
        return self.dask_threads * max(3 * n * m, 16 * m * t + KING_TILE_BYTES * t * t)


class OverBudget(ValueError):
    """A pass that needs ``needed`` bytes (its smallest plan) where ``limit`` bytes are allowed;
    ``what`` names the pass and its size (``"the GRM of 300 samples"``)."""

    def __init__(self, *, needed: int, limit: int, what: str):
        self.needed, self.limit, self.what = needed, limit, what
        super().__init__(f"{what}: {format_bytes(needed)} needed, more than the memory limit ({format_bytes(limit)})")

    def parameter_error(self, *, memory_limit: int | str | None, **causes: object) -> ParameterError:
        """The error naming ``memory_limit`` (the value given, or None for the default) and the
        ``causes``: other parameters (with their values) that the need grows with.

        Examples
        --------
        >>> over = OverBudget(needed=2**33, limit=2**31, what="the passes of 300 samples")
        >>> print(over.parameter_error(memory_limit=None, n_probes=100000))
        the passes of 300 samples with n_probes=100000: 8.00 GiB needed, more than the default memory_limit (2.00 GiB)
        """
        with_causes = "".join(f" with {{{name}}}" for name in causes)
        limit = "{memory_limit}" if memory_limit is not None else "the default {memory_limit}"
        return ParameterError(f"{self.what}{with_causes}: {format_bytes(self.needed)} needed, more than {limit} "
                              f"({format_bytes(self.limit)})",
                              **causes, memory_limit=memory_limit if memory_limit is not None else NAMED)


def grm_plan(n_samples: int, n_markers: int, *, memory_limit: int | None = None, tile: int | None = None,
             store_chunk: int | None = None, parts: int = 1) -> ComputePlan | TilePlan:
    """:func:`plan_grm` when it fits the :func:`budget` of ``memory_limit`` and no ``tile``
    size is asked for, else :func:`plan_tiles`.

    On a cluster each worker thread runs one task with the worker's BLAS threads (see
    :mod:`dask_h2.cluster`), and the untiled GRM's marker chunks shrink so that the
    ``n_markers`` make at least two tasks per worker thread. ``store_chunk``: markers per
    stored chunk (see :func:`plan_grm`); ``parts``: K_k built at once (``grm --partition``).
    Raises :class:`OverBudget` when even the smallest tiles do not fit.
    """
    where = budget(memory_limit)
    if tile is None:
        max_chunk = MAX_CHUNK
        if where.cluster:
            spread = -(-n_markers // (2 * where.total_threads))  # ceil: equal chunks
            max_chunk = min(MAX_CHUNK, max(MIN_CHUNK, -(-spread // CHUNK_MULTIPLE) * CHUNK_MULTIPLE))
        try:
            return plan_grm(
                n_samples,
                n_markers,
                memory_limit=where.limit,
                cores=where.cores,
                dask_threads=where.threads,
                store_chunk=store_chunk,
                max_chunk=max_chunk,
                parts=parts,
            )
        except ValueError:
            pass
    threads = where.threads or 1
    return plan_tiles(
        n_samples,
        memory_limit=where.limit,
        dask_threads=threads,
        blas_threads=max(1, where.cores // threads),
        tile=tile,
        parts=parts,
    )


def plan_grm(n_samples: int, n_markers: int, *, memory_limit: int | None = None, cores: int | None = None,
             dask_threads: int | None = None, store_chunk: int | None = None,
             max_chunk: int = MAX_CHUNK, parts: int = 1) -> ComputePlan:
    """The largest marker chunks (up to ``max_chunk``), with the fan-in of the smallest
    predicted peak, that keep that peak within ``memory_limit`` bytes (default 2 GiB).

    Chunks are multiples of ``store_chunk`` (markers per stored chunk, merged and never
    split by :func:`dask_h2.kinship.grm.marker_chunks`, so a larger stored chunk is used as it
    is), else of ``CHUNK_MULTIPLE``. By default one Dask thread runs each chunk's SYRK
    with BLAS on all cores: standardizing is a small share of the work, and running it
    beside the SYRK on a second Dask thread only takes cores from BLAS (measured by
    benchmarks/full_scale.py). ``dask_threads`` splits the cores otherwise (BLAS
    threads = cores // dask_threads). ``parts``: K_k built at once. Raises :class:`OverBudget` when nothing fits.
    """
    cores = cores or os.cpu_count() or 1
    threads = max(1, min(dask_threads or 1, cores))
    limit = memory_limit or DEFAULT_MEMORY_LIMIT
    plans = candidate_plans(
        n_samples,
        n_markers,
        dask_threads=threads,
        blas_threads=max(1, cores // threads),
        store_chunk=store_chunk,
        max_chunk=max_chunk,
        parts=parts,
    )
    fitting = next((plan for plan in plans if plan.peak_bytes(n_samples, n_markers) <= limit), None)
    if fitting is not None:
        return fitting
    smallest = min(plan.peak_bytes(n_samples, n_markers) for plan in plans)
    per_part = f" per part, {parts} parts" if parts > 1 else ""
    raise OverBudget(needed=smallest, limit=limit,
                     what=f"the GRM of {n_samples} samples (a few n x n float64 buffers{per_part})")


def candidate_plans(n_samples: int, n_markers: int, *, dask_threads: int = 1, blas_threads: int = 1,
                    store_chunk: int | None = None, max_chunk: int = MAX_CHUNK, parts: int = 1) -> list[ComputePlan]:
    """One plan per chunk size :func:`plan_grm` may choose, largest chunk first, each with the
    fan-in of its smallest predicted peak (the tree's shape does not change the work: M/m − 1 adds)."""
    if n_markers < 1:
        raise ValueError("no markers: K is undefined")
    step = store_chunk or CHUNK_MULTIPLE
    top = min(max(step, max_chunk // step * step), -(-n_markers // step) * step)  # no chunk beyond M
    sizes = range(top, (step if store_chunk else MIN_CHUNK) - 1, -step)
    return [
        min(
            (
                ComputePlan(
                    chunk_markers=chunk,
                    split_every=split_every,
                    dask_threads=dask_threads,
                    blas_threads=blas_threads,
                    parts=parts,
                )
                for split_every in FAN_INS
            ),
            key=lambda plan: (plan.peak_bytes(n_samples, n_markers), -plan.split_every),
        )
        for chunk in sizes
    ]


def plan_tiles(n_samples: int, *, memory_limit: int, dask_threads: int = 1, blas_threads: int | None = None,
               tile: int | None = None, parts: int = 1) -> TilePlan:
    """The largest tiles (t² terms within half of each task's share of ``memory_limit``) and
    then the largest marker chunks that keep :meth:`TilePlan.peak_bytes` within it; ``tile``
    fixes the tile size; ``parts`` K_k are built at once."""
    share = memory_limit // dask_threads
    square = 28 * parts  # bytes per t² in a task
    t = tile or max(MIN_TILE, math.isqrt(share // (2 * square)) // MIN_TILE * MIN_TILE)
    while True:
        t = min(t, n_samples)
        chunk = (share - square * t * t) // (3 * n_samples + 10 * t) if share > square * t * t else 0
        chunk = min(MAX_CHUNK, chunk // CHUNK_MULTIPLE * CHUNK_MULTIPLE)
        if chunk >= MIN_CHUNK:
            return TilePlan(
                tile=t, chunk_markers=int(chunk), dask_threads=dask_threads, blas_threads=blas_threads or 1, parts=parts
            )
        if tile or t <= MIN_TILE:
            needed = TilePlan(
                tile=t, chunk_markers=MIN_CHUNK, dask_threads=dask_threads, blas_threads=1, parts=parts
            ).peak_bytes(n_samples)
            raise OverBudget(needed=needed, limit=memory_limit,
                             what=f"the GRM of {n_samples} samples in tiles of {t}")
        t = max(MIN_TILE, t // 2 // MIN_TILE * MIN_TILE)


def moments_peak_bytes(plan: ComputePlan, *, n_samples: int, n_markers: int, sum_columns: int, right_columns: int,
                       tile: int = 2048) -> int:
    """Predicted peak (bytes) of the moments passes (:mod:`dask_h2.moments.passes`) on one worker, or locally.

    Each of the ``dask_threads`` tasks holds its int8 chunk and the copy of its used rows
    (2·n·m), a float32 tile (4·m·tile), its products with the right-hand side (4·m·w) and four
    float32 n-row sums of ``sum_columns`` (K·B·P: the chunk's totals, a block's sums, two edge
    blocks; the sketch's k + 10 when wider); the tree of totals holds :func:`tree_buffers`
    float32 partials; the right-hand sides (4·n·w, w = ``right_columns``) are shared by the tasks.
    """
    n, m, sums = n_samples, plan.chunk_markers, 4 * n_samples * sum_columns
    task = 2 * n * m + 4 * m * tile + 4 * m * right_columns + 4 * sums
    return (plan.dask_threads * task + tree_buffers(n_markers, m, split_every=plan.split_every) * sums
            + 4 * n * right_columns)


def moments_plan(n_samples: int, n_markers: int, *, sum_columns: int, right_columns: int,
                 memory_limit: int | None = None, store_chunk: int | None = None) -> ComputePlan:
    """:func:`plan_moments` for the :func:`budget` of ``memory_limit``: this machine's cores,
    or the smallest worker of the cluster and the cluster's total threads."""
    where = budget(memory_limit)
    return plan_moments(
        n_samples,
        n_markers,
        sum_columns=sum_columns,
        right_columns=right_columns,
        memory_limit=where.limit,
        threads=where.threads or where.cores,
        store_chunk=store_chunk,
        total_threads=where.total_threads,
    )


def plan_moments(n_samples: int, n_markers: int, *, sum_columns: int, right_columns: int,
                 memory_limit: int | None = None, threads: int | None = None, store_chunk: int | None = None,
                 task_bytes: int = TASK_BYTES, total_threads: int | None = None) -> ComputePlan:
    """Marker chunks (multiples of ``store_chunk``) and fan-in for the moments passes within
    ``memory_limit`` bytes (default 2 GiB) on a worker (or locally) running ``threads`` tasks at once
    with single-threaded BLAS: chunks of about ``task_bytes`` of genotypes, fewer when that leaves
    less than four tasks per thread of the ``total_threads`` (default ``threads``) or the peak
    (:func:`moments_peak_bytes`, at the fan-in that makes it smallest) does not fit. The chunks
    depend on the total threads, not on how they are split into workers, so that a cluster of
    single-threaded workers runs the same graph as local threads. Raises :class:`OverBudget` when nothing fits."""
    threads = threads or os.cpu_count() or 1
    limit = memory_limit or DEFAULT_MEMORY_LIMIT
    step = store_chunk or CHUNK_MULTIPLE
    balanced = -(-n_markers // (4 * (total_threads or threads))) // step * step
    top = max(step, min(task_bytes // max(n_samples, 1) // step * step, balanced, MAX_CHUNK // step * step))
    shape = {"n_samples": n_samples, "n_markers": n_markers, "sum_columns": sum_columns,
             "right_columns": right_columns}
    for chunk in range(top, 0, -step):
        plan = min((ComputePlan(chunk_markers=chunk, split_every=s, dask_threads=threads, blas_threads=1)
                    for s in FAN_INS), key=lambda p: (moments_peak_bytes(p, **shape), -p.split_every))
        if moments_peak_bytes(plan, **shape) <= limit:
            return plan
    needed = moments_peak_bytes(ComputePlan(chunk_markers=step, split_every=2, dask_threads=threads, blas_threads=1),
                                **shape)
    raise OverBudget(needed=needed, limit=limit, what=f"the moments passes for {n_samples} samples")


def exact_path_bytes(n_samples: int) -> int:
    """Driver memory (bytes) of the exact path for n samples: K (8n²), LAPACK's ``evd`` workspace
    and the eigenvectors, about 32n² in all (n = 27,000: 22 GiB)."""
    return 32 * n_samples * n_samples


def check_driver_memory(n_samples: int, what: str) -> None:
    """Raise :class:`ParameterError` (naming the ``method`` parameter: the streamed methods need no
    n × n matrix) when the exact path for ``n_samples`` cannot fit this machine's memory.

    Examples
    --------
    >>> check_driver_memory(10**6, "big.zarr")
    Traceback (most recent call last):
    ...
    dask_h2.errors.ParameterError: big.zarr: the exact path holds K and its eigendecomposition for 1000000 samples ...
    """
    needed, total = exact_path_bytes(n_samples), psutil.virtual_memory().total
    if needed > total:
        raise ParameterError(f"{what}: the exact path holds K and its eigendecomposition for {n_samples} samples on "
                             f"this machine, about {needed / 2**30:.0f} GiB, more than its {total / 2**30:.0f} GiB; "
                             "{method} mc-reml (REML) and rhe (moments) estimate h2 from the genotypes with no "
                             "n x n matrix", method=NAMED)


def king_plan(n_samples: int, *, memory_limit: int | None = None, store_chunk: int | None = None,
              tile: int | None = None) -> KingPlan:
    """Tiles and marker chunks of the KING-robust kinship within the :func:`budget` of ``memory_limit``:
    the largest tiles (multiples of ``MIN_TILE``) whose pairs take at most half of each task's share,
    then the largest chunks (multiples of ``store_chunk``) that fit the rest and whose pass writing
    the tiles fits the share; one BLAS thread per task, the
    cores (or a worker's threads) running tasks side by side. Raises :class:`OverBudget` when nothing fits."""
    where = budget(memory_limit)
    threads = where.threads or where.cores
    share = where.limit // threads
    step = store_chunk or CHUNK_MULTIPLE
    t = tile or max(MIN_TILE, math.isqrt(share // (2 * KING_TILE_BYTES)) // MIN_TILE * MIN_TILE)
    t = min(t, max(n_samples, 1))
    chunk = min((share - KING_TILE_BYTES * t * t) // (16 * t), share // (3 * max(n_samples, 1))) // step * step
    chunk = min(chunk, max(step, MAX_CHUNK // step * step))
    plan = KingPlan(tile=t, chunk_markers=max(chunk, step), dask_threads=threads, blas_threads=1)
    if chunk < step or plan.peak_bytes(n_samples) > where.limit:
        raise OverBudget(needed=plan.peak_bytes(n_samples), limit=where.limit,
                         what=f"the KING-robust kinship of {n_samples} samples in tiles of {t}")
    return plan


def mcreml_peak_bytes(plan: ComputePlan, *, n_samples: int, n_markers: int, columns: int, components: int,
                      workers: int = 1, tile: int = 2048) -> int:
    """Predicted peak (bytes) of one worker (or this machine) in an MC-REML fit (:mod:`dask_h2.mcreml`).

    The genotypes stay in memory for all the passes: the used markers' int8 rows, ``n_markers`` × n
    bytes over the cluster's ``workers`` (with their centres and scales, 16·M). Each of the
    ``dask_threads`` tasks of a pass holds a float32 tile (4·m·tile), its products with the
    ``columns`` B right-hand sides (4·m·B, twice: Z and its weighted copy) and its float32 n-row
    outputs for ``components`` K (4·K·n·B); the tree of outputs holds :func:`tree_buffers` of those;
    the right-hand sides (4·n·B) are shared. Locally the driver's CG vectors (x, r, p, V·p, the
    right-hand sides and the draws: about 8·(6 + K)·n·B) are in the same process.
    """
    n, m, b = n_samples, plan.chunk_markers, columns
    persisted = -(-n_markers * (n + 16) // workers)
    outputs = 4 * components * n * b
    task = 4 * m * tile + 8 * m * b + outputs
    driver = 8 * (6 + components) * n * b if workers == 1 else 0
    return (persisted + plan.dask_threads * task + tree_buffers(n_markers, m, split_every=plan.split_every) * outputs
            + 4 * n * b + driver)


def mcreml_plan(n_samples: int, n_markers: int, *, columns: int, components: int, memory_limit: int | None = None,
                store_chunk: int | None = None) -> ComputePlan:
    """Marker chunks and fan-in for MC-REML's passes within ``memory_limit`` bytes (default 2 GiB) per worker
    (or locally), the genotypes held in memory (:func:`mcreml_peak_bytes`): the moments path's chunks
    (:func:`plan_moments`), smaller when the peak does not fit. Raises :class:`OverBudget` when even the
    smallest chunks do not fit (the persisted genotypes alone may not)."""
    where = budget(memory_limit)
    threads = where.threads or where.cores
    workers = max(1, where.total_threads // threads) if where.cluster else 1
    step = store_chunk or CHUNK_MULTIPLE
    shape = {"n_samples": n_samples, "n_markers": n_markers, "columns": columns, "components": components,
             "workers": workers}
    balanced = -(-n_markers // (4 * where.total_threads)) // step * step
    top = max(step, min(TASK_BYTES // max(n_samples, 1) // step * step, balanced, MAX_CHUNK // step * step))
    for chunk in range(top, 0, -step):
        plan = min((ComputePlan(chunk_markers=chunk, split_every=s, dask_threads=threads, blas_threads=1)
                    for s in FAN_INS), key=lambda p: (mcreml_peak_bytes(p, **shape), -p.split_every))
        if mcreml_peak_bytes(plan, **shape) <= where.limit:
            return plan
    needed = mcreml_peak_bytes(ComputePlan(chunk_markers=step, split_every=2, dask_threads=threads, blas_threads=1),
                               **shape)
    persisted = format_bytes(-(-n_markers * (n_samples + 16) // workers))
    raise OverBudget(needed=needed, limit=where.limit,
                     what=f"MC-REML for {n_samples} samples x {n_markers} markers ({persisted} of genotypes held per "
                          f"worker)")
