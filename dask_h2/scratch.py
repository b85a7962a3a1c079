"""A run's scratch array in the store: what one pass writes for a later one to read, removed at the end.

The moments path writes each chunk's part of every jackknife block's sums there, read back by the
block pass (:mod:`dask_h2.moments.passes`); KING writes the genotypes once in sample tiles, read by
every tile of pairs (:mod:`dask_h2.kinship.king`)."""
from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Iterator

import psutil
import zarr

from dask_h2.store import is_url, store_lock

SCRATCH = "scratch"  # in the store: one array for each run that is using one
log = logging.getLogger("dask_h2")


@contextlib.contextmanager
def scratch_array(store: str | Path, shape: tuple[int, ...], *, dtype: str = "float32",
                  chunks: tuple[int, ...] | None = None) -> Iterator[zarr.Array]:
    """An array of ``shape`` and ``dtype`` in uncompressed ``chunks`` (default: one a position of the
    first axis), written without Zarr's check for a chunk of zeros (which costs as much as the
    write), removed on the way out.

    Each run has its own, ``STORE/scratch/<host>-<pid>-<random>``, so that runs on the same
    store at once do not share one (in a local temporary folder when the store cannot be written);
    a run first removes the scratch that runs of this machine which no longer exist left behind
    (killed, or interrupted while a task was still writing)."""
    temporary = None
    try:
        with store_lock(store, SCRATCH) as unwritable:
            if unwritable is not None:
                raise unwritable
            group = zarr.open_group(str(store), mode="r+").require_group(SCRATCH)
            _remove_abandoned_scratch(store)
            array = _create_scratch(group, shape, dtype, chunks)
    except OSError as exc:
        temporary = tempfile.mkdtemp(prefix="dask-h2-scratch-")
        log.warning(f"{store} cannot be written ({exc.strerror or exc}); its scratch goes to {temporary}, "
                    "which every Dask worker must see")
        group = zarr.open_group(temporary, mode="w")
        array = _create_scratch(group, shape, dtype, chunks)
    try:
        yield array
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
        else:
            del group[array.basename]
            with store_lock(store, SCRATCH):  # the last run out leaves the store as it found it
                if not list(group.keys()):
                    del zarr.open_group(str(store), mode="r+")[SCRATCH]


def _create_scratch(group: zarr.Group, shape: tuple[int, ...], dtype: str,
                    chunks: tuple[int, ...] | None) -> zarr.Array:
    name = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
    return group.create_array(name, shape=shape, chunks=chunks or (1, *shape[1:]), dtype=dtype, compressors=None,
                              fill_value=0, config={"write_empty_chunks": True})


def _remove_abandoned_scratch(store: str | Path) -> None:
    """Remove the folders under ``STORE/scratch`` of runs of this machine that no longer exist
    (a local store; held under the scratch's lock)."""
    if is_url(store):
        return
    host = socket.gethostname()
    for folder in (Path(store) / SCRATCH).iterdir():
        owner, _, rest = folder.name.rpartition("-")[0].rpartition("-")
        if folder.is_dir() and owner == host and rest.isdigit() and not psutil.pid_exists(int(rest)):
            shutil.rmtree(folder, ignore_errors=True)
