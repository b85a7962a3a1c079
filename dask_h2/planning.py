"""The GRM's plan for where it runs: untiled when its n × n buffers fit a worker, else tiled."""
from __future__ import annotations

import os

from .cluster import active_client, worker_budget
from .resources import CHUNK_MULTIPLE, DEFAULT_MEMORY_LIMIT, MAX_CHUNK, MIN_CHUNK, ComputePlan, plan_grm
from .tiled import TilePlan, plan_tiles


def grm_plan(n_samples: int, n_markers: int, memory_limit: int | None = None, tile: int | None = None,
             store_chunk: int | None = None) -> ComputePlan | TilePlan:
    """:func:`dask_h2.resources.plan_grm` when it fits ``memory_limit`` (default 2 GiB) and no
    ``tile`` size is asked for, else :func:`dask_h2.tiled.plan_tiles`.

    Locally the limit is the process's; on a cluster (an active client) it is per worker,
    capped by the smallest worker's budget, each worker thread runs one task with the
    worker's BLAS threads (see :mod:`dask_h2.cluster`), and the untiled GRM's marker
    chunks shrink so that the ``n_markers`` make at least two tasks per worker thread.
    ``store_chunk``: markers per stored chunk (see :func:`dask_h2.resources.plan_grm`).
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
                            max_chunk=max_chunk)
        except ValueError:
            pass
    threads = threads or 1
    return plan_tiles(n_samples, limit, threads, max(1, cores // threads), tile)
