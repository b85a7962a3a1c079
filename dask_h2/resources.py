"""How the GRM uses the machine: marker chunk size, reduction fan-in and thread split.

Memory model of :func:`dask_h2.grm.kinship` for n samples, M markers in chunks of m,
fan-in s and t tasks in flight (bytes): each task holds the int8 chunk (n·m), the
float32 standardization of ``STANDARDIZE_BLOCK`` markers (4·n·b) and its float32
SYRK result (4·n²). The tree reduction (in-place adds, :func:`dask_h2.grm.sum_partials`)
of the ⌈M/m⌉ results has depth d = ⌈log_s ⌈M/m⌉⌉; run depth first, it holds at most
s − 1 finished partials per level plus the sum being built: d·(s − 1) + 1 buffers,
each counted as float64 (8·n²). Assembling K afterwards holds one n × n buffer. With
P parts (one K_k each, ``grm --partition``) every n × n term is P of them.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

from dask.utils import format_bytes, parse_bytes

DEFAULT_MEMORY_LIMIT = 2 * 2**30  # bytes: leaves room for the eigendecomposition within 2.5 GB
MIN_CHUNK, MAX_CHUNK, CHUNK_MULTIPLE = 256, 32768, 256
STANDARDIZE_BLOCK = 2048  # markers standardized at a time within a chunk (see dask_h2.grm)
TASK_BYTES = 64 * 2**20  # int8 genotypes per task of the moments passes
FAN_INS = (8, 4, 3, 2)


@dataclass(frozen=True)
class ComputePlan:
    """``chunk_markers`` per task, ``split_every`` partials per reduction step, and
    ``dask_threads`` × ``blas_threads`` = the cores used."""

    chunk_markers: int
    split_every: int
    dask_threads: int
    blas_threads: int
    parts: int = 1

    def peak_bytes(self, n_samples: int, n_markers: int) -> int:
        """Predicted peak (bytes) of the GRM of ``n_samples`` from ``n_markers`` (see the module docstring)."""
        n, m, squares = n_samples, self.chunk_markers, self.parts * n_samples**2
        task = n * m + 4 * n * min(m, STANDARDIZE_BLOCK) + 4 * squares
        chunks = max(1, -(-n_markers // m))
        depth = math.ceil(math.log(chunks, self.split_every) - 1e-9) if chunks > 1 else 0
        return self.dask_threads * task + (depth * (self.split_every - 1) + 1) * 8 * squares


def plan_grm(n_samples: int, n_markers: int, memory_limit: int | None = None, cores: int | None = None,
             dask_threads: int | None = None, store_chunk: int | None = None,
             max_chunk: int = MAX_CHUNK, parts: int = 1) -> ComputePlan:
    """The largest marker chunks (up to ``max_chunk``), with the fan-in of the smallest
    predicted peak, that keep that peak within ``memory_limit`` bytes (default 2 GiB).

    Chunks are multiples of ``store_chunk`` (markers per stored chunk, merged and never
    split by :func:`dask_h2.grm.marker_chunks`, so a larger stored chunk is used as it
    is), else of ``CHUNK_MULTIPLE``. By default one Dask thread runs each chunk's SYRK
    with BLAS on all cores: standardizing is a small share of the work, and running it
    beside the SYRK on a second Dask thread only takes cores from BLAS (measured by
    benchmarks/full_scale.py). ``dask_threads`` splits the cores otherwise (BLAS
    threads = cores // dask_threads). ``parts``: K_k built at once. Raises ValueError when nothing fits.
    """
    cores = cores or os.cpu_count() or 1
    threads = max(1, min(dask_threads or 1, cores))
    limit = memory_limit or DEFAULT_MEMORY_LIMIT
    plans = candidate_plans(n_samples, n_markers, threads, max(1, cores // threads), store_chunk, max_chunk, parts)
    fitting = next((plan for plan in plans if plan.peak_bytes(n_samples, n_markers) <= limit), None)
    if fitting is not None:
        return fitting
    smallest = min(plan.peak_bytes(n_samples, n_markers) for plan in plans)
    per_part = f" per part, {parts} parts" if parts > 1 else ""
    raise ValueError(f"memory limit {format_bytes(limit)} is below the {format_bytes(smallest)} the GRM of "
                     f"{n_samples} samples needs (a few n x n float64 buffers{per_part})")


def candidate_plans(n_samples: int, n_markers: int, dask_threads: int = 1, blas_threads: int = 1,
                    store_chunk: int | None = None, max_chunk: int = MAX_CHUNK, parts: int = 1) -> list[ComputePlan]:
    """One plan per chunk size :func:`plan_grm` may choose, largest chunk first, each with the
    fan-in of its smallest predicted peak (the tree's shape does not change the work: M/m − 1 adds)."""
    if n_markers < 1:
        raise ValueError("no markers: K is undefined")
    step = store_chunk or CHUNK_MULTIPLE
    top = min(max(step, max_chunk // step * step), -(-n_markers // step) * step)  # no chunk beyond M
    sizes = range(top, (step if store_chunk else MIN_CHUNK) - 1, -step)
    return [min((ComputePlan(chunk, split_every, dask_threads, blas_threads, parts) for split_every in FAN_INS),
                key=lambda plan: (plan.peak_bytes(n_samples, n_markers), -plan.split_every))
            for chunk in sizes]


def parse_memory(text: str) -> int:
    """'2GB', '1.5GiB', '800MB' or a number of bytes → bytes (Dask's reading of sizes)."""
    try:
        if not any(character.isdigit() for character in text):  # Dask reads '' as 1 byte and 'GB' as 1 GB
            raise ValueError(text)
        return int(parse_bytes(text))
    except (TypeError, ValueError):
        raise ValueError(f"cannot read memory size {text!r}; use e.g. 2GB, 1.5GiB or 800MB") from None


def moments_peak_bytes(plan: ComputePlan, n_samples: int, n_markers: int, sum_columns: int, right_columns: int,
                       tile: int = 2048) -> int:
    """Predicted peak (bytes) of the moments passes (:mod:`dask_h2.rhe_passes`) on one worker, or locally.

    Each of the ``dask_threads`` tasks holds its int8 chunk and the copy of its used rows
    (2·n·m), a float32 tile (4·m·tile), its products with the right-hand side (4·m·w) and four
    float32 n-row sums of ``sum_columns`` (K·B·P: the chunk's totals, a block's sums, two edge
    blocks; the sketch's k + 10 when wider); the tree of totals holds d·(s − 1) + 1 float32
    partials; the right-hand sides (4·n·w, w = ``right_columns``) are shared by the tasks.
    """
    n, m, sums = n_samples, plan.chunk_markers, 4 * n_samples * sum_columns
    task = 2 * n * m + 4 * m * tile + 4 * m * right_columns + 4 * sums
    chunks = max(1, -(-n_markers // m))
    depth = math.ceil(math.log(chunks, plan.split_every) - 1e-9) if chunks > 1 else 0
    return plan.dask_threads * task + (depth * (plan.split_every - 1) + 1) * sums + 4 * n * right_columns


def plan_moments(n_samples: int, n_markers: int, sum_columns: int, right_columns: int,
                 memory_limit: int | None = None, threads: int | None = None, store_chunk: int | None = None,
                 task_bytes: int = TASK_BYTES, total_threads: int | None = None) -> ComputePlan:
    """Marker chunks (multiples of ``store_chunk``) and fan-in for the moments passes within
    ``memory_limit`` bytes (default 2 GiB) on a worker (or locally) running ``threads`` tasks at once
    with single-threaded BLAS: chunks of about ``task_bytes`` of genotypes, fewer when that leaves
    less than four tasks per thread of the ``total_threads`` (default ``threads``) or the peak
    (:func:`moments_peak_bytes`, at the fan-in that makes it smallest) does not fit. The chunks
    depend on the total threads, not on how they are split into workers, so that a cluster of
    single-threaded workers runs the same graph as local threads. Raises ValueError when nothing fits."""
    threads = threads or os.cpu_count() or 1
    limit = memory_limit or DEFAULT_MEMORY_LIMIT
    step = store_chunk or CHUNK_MULTIPLE
    balanced = -(-n_markers // (4 * (total_threads or threads))) // step * step
    top = max(step, min(task_bytes // max(n_samples, 1) // step * step, balanced, MAX_CHUNK // step * step))
    shape = (n_samples, n_markers, sum_columns, right_columns)
    for chunk in range(top, 0, -step):
        plan = min((ComputePlan(chunk, s, threads, 1) for s in FAN_INS),
                   key=lambda p: (moments_peak_bytes(p, *shape), -p.split_every))
        if moments_peak_bytes(plan, *shape) <= limit:
            return plan
    needed = moments_peak_bytes(ComputePlan(step, 2, threads, 1), *shape)
    raise ValueError(f"memory limit {limit / 2**30:.2f} GiB is below the {needed / 2**30:.2f} GiB the moments "
                     f"passes need for {n_samples} samples")
