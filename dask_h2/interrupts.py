"""Stopping ``dask-h2`` quietly: Ctrl-C (SIGINT) and SIGTERM at any moment, Python's imports included.

Both become :class:`KeyboardInterrupt`; the command then ends with one line,
``dask-h2: interrupted``, and exit code 130 (128 + SIGINT) or 143 (128 + SIGTERM). What
an interrupted command leaves behind is never marked complete, so the next identical
command resumes or redoes it (see :mod:`dask_h2.store`). This module imports nothing
heavy, so that the command's entry point can install it before Dask, Zarr and numba load.
"""
from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import warnings
from typing import Iterator

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
SETTLE_SECONDS = 30  # at most, for the writes in flight to finish after an interrupt


class Interrupted(KeyboardInterrupt):
    """A stop asked for by SIGTERM (SIGINT raises Python's own KeyboardInterrupt)."""


def _raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted()


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Inside the context, SIGTERM raises :class:`Interrupted` (in the main thread; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def interrupt_behind(error: BaseException) -> KeyboardInterrupt | None:
    """The interrupt behind ``error``: itself, or the direct cause of the error a C function raises when
    an interrupt cuts short a callback of its (SystemError: os.fspath, ...) or an extension module's
    initialization (ImportError: "initialization failed"); None for any other error."""
    if isinstance(error, KeyboardInterrupt):
        return error
    cause = error.__cause__
    return cause if isinstance(error, (SystemError, ImportError)) and isinstance(cause, KeyboardInterrupt) else None


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """130 after SIGINT (Ctrl-C), 143 after SIGTERM."""
    return EXIT_CODES[signal.SIGTERM if isinstance(interrupt, Interrupted) else signal.SIGINT]


def report(interrupt: KeyboardInterrupt) -> int:
    """Let the writes in flight finish, say ``dask-h2: interrupted`` on stderr, return the exit code.

    A Zarr call that the interrupt cut short before its coroutine was scheduled leaves that
    coroutine unawaited, and an object it cut short while being built (an event loop) fails in
    its finalizer; Python would print both when the interrupted frames are freed, and Zarr's exit
    handler warns when its I/O thread, still busy, does not stop within 0.2 s ("Thread did not
    finish cleanly"). The command is ending: they are dropped."""
    warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)
    sys.unraisablehook = lambda unraisable: None
    logging.getLogger("zarr.core.sync").setLevel(logging.ERROR)
    settle_zarr_io()
    print("dask-h2: interrupted", file=sys.stderr)
    return exit_code(interrupt)


def settle_zarr_io(timeout: float = SETTLE_SECONDS) -> None:
    """Wait for the tasks on Zarr's I/O event loop (a thread of its own) to finish.

    An interrupt stops the main thread while Zarr may still be writing for it; left pending,
    those tasks are destroyed at exit and asyncio prints "Task was destroyed but it is pending"
    or "Task exception was never retrieved". Each write is atomic (a temporary file renamed),
    so finishing them only completes what a later run would otherwise redo."""
    zarr_sync = sys.modules.get("zarr.core.sync")
    loop = getattr(zarr_sync, "loop", [None])[0]
    if loop is None or loop.is_closed() or not loop.is_running():
        return
    import asyncio  # loaded already with Zarr; not at the command's start

    async def pending() -> None:
        tasks = asyncio.all_tasks() - {asyncio.current_task()}
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    with contextlib.suppress(Exception):
        asyncio.run_coroutine_threadsafe(pending(), loop).result(timeout + 1)
