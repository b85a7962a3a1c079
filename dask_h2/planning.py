"""The GRM's plan for where it runs: untiled when its n × n buffers fit a worker, else tiled."""
from __future__ import annotations

import os

import psutil

from .cluster import active_client, worker_budget
from .errors import InputError
from .resources import CHUNK_MULTIPLE, DEFAULT_MEMORY_LIMIT, MAX_CHUNK, MIN_CHUNK, ComputePlan, plan_grm
from .tiled import TilePlan, plan_tiles


def grm_plan(n_samples: int, n_markers: int, memory_limit: int | None = None, tile: int | None = None,
             store_chunk: int | None = None, parts: int = 1) -> ComputePlan | TilePlan:
    """:func:`dask_h2.resources.plan_grm` when it fits ``memory_limit`` (default 2 GiB) and no
    ``tile`` size is asked for, else :func:`dask_h2.tiled.plan_tiles`.

    Locally the limit is the process's; on a cluster (an active client) it is per worker,
    capped by the smallest worker's budget, each worker thread runs one task with the
    worker's BLAS threads (see :mod:`dask_h2.cluster`), and the untiled GRM's marker
    chunks shrink so that the ``n_markers`` make at least two tasks per worker thread.
    ``store_chunk``: markers per stored chunk (see :func:`dask_h2.resources.plan_grm`); ``parts``:
    K_k built at once (``grm --partition``).
    Raises ValueError when even the smallest tiles do not fit.
    """
    client = active_client()
    if client is None:  # plan_grm's default split of the local cores
        limit, threads, cores = memory_limit or DEFAULT_MEMORY_LIMIT, None, os.cpu_count() or 1
    else:
        budget, threads = worker_budget(client)
        limit, cores = min(memory_limit or DEFAULT_MEMORY_LIMIT, budget or DEFAULT_MEMORY_LIMIT), threads
    if tile is None:
        max_chunk = MAX_CHUNK
        if client is not None:
            spread = -(-n_markers // (2 * sum(client.nthreads().values())))  # ceil: equal chunks
            max_chunk = min(MAX_CHUNK, max(MIN_CHUNK, -(-spread // CHUNK_MULTIPLE) * CHUNK_MULTIPLE))
        try:
            return plan_grm(n_samples, n_markers, limit, cores=cores, dask_threads=threads, store_chunk=store_chunk,
                            max_chunk=max_chunk, parts=parts)
        except ValueError:
            pass
    threads = threads or 1
    return plan_tiles(n_samples, limit, threads, max(1, cores // threads), tile, parts)


def exact_path_bytes(n_samples: int) -> int:
    """Driver memory (bytes) of the exact path for n samples: K (8n²), LAPACK's ``evd`` workspace
    and the eigenvectors, about 32n² in all (n = 27,000: 22 GiB)."""
    return 32 * n_samples * n_samples


def check_driver_memory(n_samples: int, what: str) -> None:
    """Raise :class:`InputError` naming ``--method rhe`` when the exact path for ``n_samples``
    cannot fit this machine's memory."""
    needed, total = exact_path_bytes(n_samples), psutil.virtual_memory().total
    if needed > total:
        raise InputError(f"{what}: the exact path holds K and its eigendecomposition for {n_samples} samples on this "
                         f"machine, about {needed / 2**30:.0f} GiB, more than its {total / 2**30:.0f} GiB; "
                         "--method rhe estimates h2 from the genotypes with no n x n matrix")

