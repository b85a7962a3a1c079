"""The one exception type that reaches the user as a single line and exit code 2."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator


class InputError(Exception):
    """Bad user input: the message names the file, the object and the problem."""


class OutputError(InputError):
    """An output that cannot be written (read-only, no permission, disk full): the path and the cause."""

    @classmethod
    def of(cls, exc: OSError, path: str | Path, doing: str) -> OutputError:
        """The error of ``exc`` raised while ``doing`` something at ``path``."""
        return cls(f"{exc.filename or path}: {exc.strerror or exc} ({doing})")


@contextlib.contextmanager
def output_errors(path: str | Path, doing: str) -> Iterator[None]:
    """Raise the :class:`OSError` of the block as :class:`OutputError` (``path`` unless the error names its own)."""
    try:
        yield
    except OSError as exc:
        raise OutputError.of(exc, path, doing) from None
