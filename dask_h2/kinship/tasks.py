"""What every streamed pass over marker chunks shares (the moments path's and MC-REML's): chunk
bounds, constant inputs shared by all tasks, and single-threaded BLAS inside a task."""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence, TypeVar

import dask
import numpy as np
import scipy.linalg.blas  # noqa: F401  (loaded before the BLAS controller looks for the BLAS libraries)
from threadpoolctl import ThreadpoolController

from dask_h2.cluster import active_client

T = TypeVar("T")


def chunk_bounds(chunks: Sequence[int]) -> list[tuple[int, int]]:
    """(start, stop) of consecutive chunks of the given sizes."""
    ends = np.cumsum([0, *chunks])
    return [(int(a), int(b)) for a, b in zip(ends[:-1], ends[1:])]


def shared(value: Any) -> Any:
    """A large constant input of many tasks: scattered to every worker on a cluster, else one graph key.
    It is scattered whole, as one future, whatever its type (``Client.scatter`` would scatter a dict's or
    a list's items one by one)."""
    client = active_client()
    if client is not None:
        return client.scatter([value], broadcast=True, hash=False)[0]
    return dask.delayed(value, pure=True)


@functools.cache
def blas_controller() -> ThreadpoolController:
    """The process's BLAS libraries (numpy's and scipy's), found once: looking for them takes about 2 ms,
    more than many a task's own work."""
    return ThreadpoolController()


def single_threaded_blas(task: Callable[..., T]) -> Callable[..., T]:
    """``task`` with BLAS on one thread, on local threads and on any cluster worker alike: thin GEMMs
    gain nothing from more, and a fixed thread count makes the float32 rounding, hence the estimate,
    the same whatever the workers' BLAS settings."""
    @functools.wraps(task)
    def run(*args, **kwargs):
        with blas_controller().limit(limits=1, user_api="blas"):
            return task(*args, **kwargs)

    return run


def only(partition: Sequence[T]) -> T:
    """The one result of a Dask bag partition of one chunk (the first step of a pass's tree reduction)."""
    (chunk,) = partition
    return chunk
