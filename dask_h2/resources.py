"""How the GRM uses the machine: marker chunk size, reduction fan-in and thread split.

Memory model of :func:`dask_h2.grm.kinship` for n samples, m markers per chunk and
t chunks in flight (bytes): each task holds the int8 chunk (n·m), its float32
standardization (4·n·m), the float32 SYRK result (4·n²) and its float64 copy
(8·n²); the tree reduction (in-place adds, :func:`dask_h2.grm.sum_partials`) holds
up to ``split_every`` inputs and one float64 sum per step: bounded above by
``split_every`` + 1 buffers of 8·n². The bound is conservative: measured 1.18 GiB
for a predicted 1.57 GiB (n = 5,123, 8,192 markers per chunk, fan-in 4).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_MEMORY_LIMIT = 2 * 2**30  # bytes: leaves room for the eigendecomposition within 2.5 GB
MIN_CHUNK, MAX_CHUNK, CHUNK_MULTIPLE = 256, 16384, 256


@dataclass(frozen=True)
class ComputePlan:
    """``chunk_markers`` per task, ``split_every`` partials per reduction step, and
    ``dask_threads`` × ``blas_threads`` = the cores used."""

    chunk_markers: int
    split_every: int
    dask_threads: int
    blas_threads: int
    serialize_blas: bool = False  # one BLAS call at a time in this process (see plan_grm)

    def peak_bytes(self, n_samples: int) -> int:
        """Predicted peak of the GRM computation (see the module docstring)."""
        n, m = n_samples, self.chunk_markers
        return self.dask_threads * (5 * n * m + 12 * n * n) + (self.split_every + 1) * 8 * n * n


def plan_grm(n_samples: int, memory_limit: int | None = None, cores: int | None = None,
             dask_threads: int | None = None) -> ComputePlan:
    """The largest chunks (up to ``MAX_CHUNK`` markers) that keep the predicted peak
    within ``memory_limit`` bytes; fan-in shrinks before chunks do.

    By default two Dask threads share multi-threaded BLAS on all cores with one BLAS
    call at a time, so that reading and standardizing a chunk overlaps the SYRK of
    the previous one (measured by benchmarks/full_scale.py: 12 % faster than one Dask
    thread, which in turn beats one BLAS thread per Dask thread by 1.45×); when that
    does not fit ``memory_limit``, one Dask thread. ``dask_threads`` sets the split
    explicitly (BLAS threads = cores // dask_threads, calls not serialized).
    """
    cores = cores or os.cpu_count() or 1
    limit = memory_limit or DEFAULT_MEMORY_LIMIT
    if dask_threads is None and cores > 1:
        try:
            return _fitting_plan(n_samples, limit, 2, cores, serialize_blas=True)
        except ValueError:
            pass
    threads = max(1, min(dask_threads or 1, cores))
    return _fitting_plan(n_samples, limit, threads, max(1, cores // threads), serialize_blas=False)


def _fitting_plan(n: int, limit: int, threads: int, blas: int, serialize_blas: bool) -> ComputePlan:
    for split_every in (8, 4, 2):
        fixed = threads * 12 * n * n + (split_every + 1) * 8 * n * n
        chunk = (limit - fixed) // (threads * 5 * n) if limit > fixed else 0
        chunk = min(MAX_CHUNK, chunk // CHUNK_MULTIPLE * CHUNK_MULTIPLE)
        if chunk >= MIN_CHUNK:
            return ComputePlan(int(chunk), split_every, threads, blas, serialize_blas)
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
