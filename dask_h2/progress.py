"""Progress bars (tqdm: rate and ETA) for loops and for Dask computations (on a cluster, drawn from the
scheduler's feed by :func:`dask_h2.cluster.compute`)."""
from __future__ import annotations

import contextlib
import sys
from contextvars import ContextVar
from typing import Iterator

from tqdm import tqdm

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
    callbacks on the local scheduler, from the scheduler's feed on a cluster (:func:`description`)."""
    if not enabled:
        yield
        return
    from tqdm.dask import TqdmCallback  # Dask loads with the commands that compute, not with every bar

    token = _DESC.set(desc)
    try:
        with TqdmCallback(desc=desc, file=sys.stderr, unit="task", dynamic_ncols=True):
            yield
    finally:
        _DESC.reset(token)


def description() -> str | None:
    """The description of the :func:`dask_progress` bar the caller runs inside, None outside one."""
    return _DESC.get()
