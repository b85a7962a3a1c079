"""Progress bars (tqdm: rate and ETA) for loops and for Dask computations, local or distributed."""
from __future__ import annotations

import contextlib
import sys
from contextvars import ContextVar
from typing import Iterator, Sequence

from distributed import Future, wait
from distributed.diagnostics.progressbar import TextProgressBar
from tqdm import tqdm
from tqdm.dask import TqdmCallback

_DESC: ContextVar[str | None] = ContextVar("dask_h2_progress", default=None)


@contextlib.contextmanager
def progress_bar(total: int, *, unit: str, desc: str, enabled: bool = True) -> Iterator[tqdm]:
    """A bar over ``total`` items of ``unit`` on stderr; silent when not ``enabled``."""
    with tqdm(total=total, unit=unit, desc=desc, disable=not enabled, file=sys.stderr,
              unit_scale=True, dynamic_ncols=True) as bar:
        yield bar


@contextlib.contextmanager
def dask_progress(desc: str, enabled: bool = True) -> Iterator[None]:
    """A bar over the tasks of the Dask computations run inside the context: through Dask's
    callbacks on the local scheduler, through :func:`follow` on a cluster."""
    if not enabled:
        yield
        return
    token = _DESC.set(desc)
    try:
        with TqdmCallback(desc=desc, file=sys.stderr, unit="task", dynamic_ncols=True):
            yield
    finally:
        _DESC.reset(token)


def follow(futures: Sequence[Future]) -> None:
    """Wait for distributed ``futures``, with a bar over their tasks inside :func:`dask_progress`."""
    desc = _DESC.get()
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
