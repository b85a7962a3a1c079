"""How the GRM uses the machine: marker chunk size, reduction fan-in and thread split.

Memory model of :func:`dask_h2.grm.kinship` for n samples, m markers per chunk and
t chunks in flight (bytes): each task holds the int8 chunk (n·m), the float32
standardization of ``STANDARDIZE_BLOCK`` markers (4·n·b), the float32 SYRK result
(4·n²) and its float64 copy (8·n²); the tree reduction (in-place adds,
:func:`dask_h2.grm.sum_partials`) holds up to ``split_every`` inputs and one float64
sum per step: bounded above by ``split_every`` + 1 buffers of 8·n².
"""
from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_MEMORY_LIMIT = 2 * 2**30  # bytes: leaves room for the eigendecomposition within 2.5 GB
MIN_CHUNK, MAX_CHUNK, CHUNK_MULTIPLE = 256, 32768, 256
STANDARDIZE_BLOCK = 2048  # markers standardized at a time within a chunk (see dask_h2.grm)


@dataclass(frozen=True)
class ComputePlan:
    """``chunk_markers`` per task, ``split_every`` partials per reduction step, and
    ``dask_threads`` × ``blas_threads`` = the cores used."""

    chunk_markers: int
    split_every: int
    dask_threads: int
    blas_threads: int

    def peak_bytes(self, n_samples: int) -> int:
        """Predicted peak of the GRM computation (see the module docstring)."""
        n, m = n_samples, self.chunk_markers
        return self.dask_threads * _task_bytes(n, m) + (self.split_every + 1) * 8 * n * n


def _task_bytes(n: int, m: int) -> int:
    """Bytes one GRM task holds for m markers of n samples (see the module docstring)."""
    return n * m + 4 * n * min(m, STANDARDIZE_BLOCK) + 12 * n * n


def plan_grm(n_samples: int, memory_limit: int | None = None, cores: int | None = None,
             dask_threads: int | None = None) -> ComputePlan:
    """The largest chunks (up to ``MAX_CHUNK`` markers) that keep the predicted peak
    within ``memory_limit`` bytes; fan-in shrinks before chunks do.

    By default one Dask thread runs each chunk's SYRK with BLAS on all cores:
    standardizing is a small share of the work, and running it beside the SYRK on
    a second Dask thread only takes cores from BLAS (measured by
    benchmarks/full_scale.py). ``dask_threads`` splits the cores otherwise (BLAS
    threads = cores // dask_threads).
    """
    cores = cores or os.cpu_count() or 1
    threads = max(1, min(dask_threads or 1, cores))
    return _fitting_plan(n_samples, memory_limit or DEFAULT_MEMORY_LIMIT, threads, max(1, cores // threads))


def _fitting_plan(n: int, limit: int, threads: int, blas: int) -> ComputePlan:
    for split_every in (8, 4, 2):
        per_task = (limit - (split_every + 1) * 8 * n * n) // threads - 12 * n * n  # for the chunk and its buffer
        full_buffer = 5 * n * STANDARDIZE_BLOCK  # a chunk of one block: int8 and float32
        if per_task >= full_buffer:
            chunk = STANDARDIZE_BLOCK + (per_task - full_buffer) // n
        else:
            chunk = max(per_task, 0) // (5 * n)
        chunk = min(MAX_CHUNK, chunk // CHUNK_MULTIPLE * CHUNK_MULTIPLE)
        if chunk >= MIN_CHUNK:
            return ComputePlan(int(chunk), split_every, threads, blas)
    needed = ComputePlan(MIN_CHUNK, 2, threads, blas).peak_bytes(n)
    raise ValueError(f"memory limit {limit / 2**30:.2f} GiB is below the {needed / 2**30:.2f} GiB "
                     f"the GRM of {n} samples needs (a few n x n float64 buffers)")


def parse_memory(text: str) -> int:
    """'2GB', '1.5GiB', '800MB' or a number of bytes → bytes."""
    units = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}
    cleaned = text.strip().upper().replace(" ", "")
    number = cleaned.rstrip("KMGIB")
    unit = cleaned[len(number):]
    if unit not in units or not number:
        raise ValueError(f"cannot read memory size {text!r}; use e.g. 2GB, 1.5GiB or 800MB")
    return int(float(number) * units[unit])
