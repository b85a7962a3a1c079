"""Stopping ``dask-h2`` quietly: Ctrl-C (SIGINT) and SIGTERM at any moment, Python's imports included.

Both become :class:`KeyboardInterrupt`; the command then ends with one line,
``dask-h2: interrupted``, and exit code 130 (128 + SIGINT) or 143 (128 + SIGTERM). What
an interrupted command leaves behind is never marked complete, so the next identical
command resumes or redoes it (see :mod:`dask_h2.store`). This module imports nothing
heavy, so that the command's entry point can install it before Dask, Zarr and numba load.
"""
from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Callable, Iterator

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


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


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """130 after SIGINT (Ctrl-C), 143 after SIGTERM."""
    return EXIT_CODES[signal.SIGTERM if isinstance(interrupt, Interrupted) else signal.SIGINT]


def report(interrupt: KeyboardInterrupt) -> int:
    """Say ``dask-h2: interrupted`` on stderr and return the exit code."""
    print("dask-h2: interrupted", file=sys.stderr)
    return exit_code(interrupt)


def main() -> int:
    """The ``dask-h2`` command (its console script and ``python -m dask_h2``): the command line of
    :mod:`dask_h2.cli`, loaded only once SIGINT and SIGTERM stop it quietly."""
    with sigterm_interrupts():
        try:
            from .cli import main as cli_main
        except KeyboardInterrupt as interrupt:
            return report(interrupt)
        return cli_main()

