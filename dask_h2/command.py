"""The ``dask-h2`` command's entry point (its console script and ``python -m dask_h2``): the
command line of :mod:`dask_h2.cli`, loaded only once SIGINT and SIGTERM stop it quietly
(:mod:`dask_h2.interrupts`), so that an interrupt during Dask's, Zarr's and numba's imports
is one line too."""
from __future__ import annotations

from dask_h2.interrupts import interrupt_behind, report, sigterm_interrupts


def main(argv: list[str] | None = None) -> int:
    """Run ``dask-h2`` with ``argv`` (default: the process's arguments); returns its exit code. An interrupt
    that comes before the command line's own handling begins (on entering it) is reported as it does."""
    with sigterm_interrupts():
        try:
            from dask_h2.cli import main as cli_main
            return cli_main(argv)
        except (KeyboardInterrupt, SystemError, ImportError) as error:
            interrupt = interrupt_behind(error)
            if interrupt is None:
                raise
            return report(interrupt)
