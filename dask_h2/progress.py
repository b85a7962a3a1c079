"""Progress bars (tqdm: rate and ETA) for loops and for Dask computations."""
from __future__ import annotations

import contextlib
import sys
from typing import Iterator

from tqdm import tqdm
from tqdm.dask import TqdmCallback


@contextlib.contextmanager
def progress_bar(total: int, unit: str, desc: str, enabled: bool = True) -> Iterator[tqdm]:
    """A bar over ``total`` items of ``unit`` on stderr; silent when not ``enabled``."""
    with tqdm(total=total, unit=unit, desc=desc, disable=not enabled, file=sys.stderr,
              unit_scale=True, dynamic_ncols=True) as bar:
        yield bar


def dask_progress(desc: str, enabled: bool = True) -> contextlib.AbstractContextManager:
    """A bar over the tasks of the Dask computations run inside the context."""
    if not enabled:
        return contextlib.nullcontext()
    return TqdmCallback(desc=desc, file=sys.stderr, unit="task", dynamic_ncols=True)
