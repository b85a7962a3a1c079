"""Where dask-h2's Dask computations run: a ``distributed`` cluster or local threads.

A computation runs on the cluster when a client is current (given to the API as
``client=``, made current with :func:`using`, or connected by :func:`connect` from
``--scheduler`` / ``DASK_SCHEDULER_ADDRESS``); otherwise on the local threaded
scheduler with the plan's split of cores between Dask and BLAS threads, in a thread pool of
each computation's own that it waits for on the way out (an interrupt included), so that no
task still writes after the computation has ended. On a
cluster each worker process runs BLAS with the threads its nanny gives it
(``OMP_NUM_THREADS`` = ``OPENBLAS_NUM_THREADS`` = 1 by distributed's default
``distributed.nanny.pre-spawn-environ``), so parallelism comes from worker threads
and processes; deploy/ documents the settings. Each worker also gets glibc's largest mmap
threshold (:class:`HeapAllocations`), without which distributed's default slows the tasks.
"""
from __future__ import annotations

import contextlib
import ctypes
import sys
from typing import Any, Iterator, Protocol, Sequence

import dask
from dask.threaded import ContextAwareThreadPoolExecutor
from distributed import Client, Future, default_client, wait
from distributed.diagnostics.plugin import WorkerPlugin
from distributed.diagnostics.progressbar import TextProgressBar
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from dask_h2.errors import InputError, ParameterError
from dask_h2.checks import OptionError, check, scheduler_address
from dask_h2.progress import description

CONNECT_TIMEOUT = "20s"


@contextlib.contextmanager
def connect(address: str | None = None) -> Iterator[Client | None]:
    """A client of the scheduler at ``address`` (default: ``DASK_SCHEDULER_ADDRESS``, Dask's
    ``scheduler-address`` setting), current inside the context and closed after it; None
    (local threads) when there is no address. Prints the cluster's size and dashboard address.
    """
    configured = address is None
    address = address or dask.config.get("scheduler-address", None)
    if address is None:
        yield None
        return
    if configured:  # not the caller's: say where it comes from
        try:
            address = scheduler_address(address)
            client = Client(address, timeout=CONNECT_TIMEOUT)
        except (OSError, ValueError, OptionError) as exc:
            raise InputError(f"DASK_SCHEDULER_ADDRESS={address} (Dask's scheduler-address setting): cannot connect to "
                             f"a Dask scheduler ({exc})") from None
    else:
        address = check(address, scheduler_address, parameter="scheduler")
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT)
        except (OSError, ValueError) as exc:
            raise ParameterError(f"{{scheduler}}: cannot connect to a Dask scheduler ({exc})", scheduler=address) \
                from None
    with client, client.as_current():
        threads = client.nthreads()
        print(f"dask-h2: Dask cluster {client.scheduler.address}: {len(threads)} workers, "
              f"{sum(threads.values())} threads; dashboard {client.dashboard_link}", file=sys.stderr)
        yield client


def using(client: Client | None) -> contextlib.AbstractContextManager:
    """Make ``client`` current inside the context (no-op for None: the current client or local threads)."""
    return client.as_current() if client is not None else contextlib.nullcontext()


def active_client() -> Client | None:
    """The current or default ``distributed`` client, None when there is none."""
    try:
        return default_client()
    except ValueError:
        return None


class ThreadSplit(Protocol):
    """A plan's split of local cores: ``dask_threads`` tasks at once, each running BLAS on ``blas_threads``."""

    dask_threads: int
    blas_threads: int


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
MMAP_THRESHOLD = 32 * 2**20  # its largest value on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)


class HeapAllocations(WorkerPlugin):
    """Raise glibc's mmap threshold to 32 MiB in every worker process, present and future.

    distributed's nanny starts each worker with ``MALLOC_TRIM_THRESHOLD_=65536``
    (``distributed.nanny.pre-spawn-environ``), and setting it freezes glibc's mmap threshold at
    128 KiB: every array above that size that a task makes (a chunk read, its products, the
    sums) is then mapped afresh and faulted in page by page. Measured on a moments fit of
    100,000 × 100,000 in one process: 22.4 s (5.5 s of system time) without the setting,
    28.6 s (15.7 s) with it, 23.6 s with it and this threshold. Arrays up to 32 MiB then come
    from the heap again; the trim threshold, and so the memory handed back, is left as it is."""

    name = "dask-h2-heap-allocations"

    def setup(self, worker: Any) -> None:
        try:
            libc = ctypes.CDLL("libc.so.6")
        except OSError:  # not glibc: nothing to do
            return
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)


_TUNED: set[str] = set()  # the clients whose cluster has the plugin


def compute(*collections: Any, plan: ThreadSplit) -> tuple:
    """``dask.compute(*collections)`` on the active client (tasks followed by the progress bar
    of :func:`dask_h2.progress.dask_progress`), else on local threads split as ``plan`` says."""
    client = active_client()
    if client is None:
        # a pool of this computation's own, shut down on the way out: after an interrupt or an error the tasks
        # already running finish (each a chunk) before the caller cleans up what they write to
        with threadpool_limits(limits=plan.blas_threads, user_api="blas"), \
                ContextAwareThreadPoolExecutor(plan.dask_threads) as pool, \
                dask.config.set(scheduler="threads", pool=pool):
            return dask.compute(*collections)
    if client.id not in _TUNED:
        client.register_plugin(HeapAllocations())
        _TUNED.add(client.id)
    futures = client.compute(list(collections))
    follow(futures)
    return tuple(client.gather(futures))


def follow(futures: Sequence[Future]) -> None:
    """Wait for ``futures``, with a bar over their tasks inside :func:`dask_h2.progress.dask_progress`."""
    desc = description()
    if desc is None:
        wait(futures)
    else:
        _ClusterBar(futures, desc)


class _ClusterBar(TextProgressBar):
    """distributed's progress feed from the scheduler (tasks done of all, recomputations
    included), drawn by tqdm; returns when the futures are finished or failed."""

    def __init__(self, futures: Sequence[Future], desc: str):
        self._bar = tqdm(desc=desc, unit="task", file=sys.stderr, dynamic_ncols=True)
        try:
            super().__init__(futures, scheduler=futures[0].client.scheduler.address)
        finally:
            self._bar.close()

    def _draw_bar(self, remaining: int, all: int, **kwargs) -> None:
        self._bar.total = all
        self._bar.update(all - remaining - self._bar.n)

    def _draw_stop(self, **kwargs) -> None:
        pass


def worker_budget(client: Client) -> tuple[int | None, int]:
    """(bytes, threads) of the smallest worker: its memory limit times Dask's
    ``distributed.worker.memory.target`` fraction (None when unlimited) and its thread count."""
    workers = list(client.scheduler_info()["workers"].values())
    if not workers:
        raise InputError(f"Dask cluster {client.scheduler.address} has no workers")
    limits = [w["memory_limit"] for w in workers if w["memory_limit"]]
    fraction = dask.config.get("distributed.worker.memory.target") or 0.6
    return (int(min(limits) * fraction) if limits else None), max(w["nthreads"] for w in workers)
