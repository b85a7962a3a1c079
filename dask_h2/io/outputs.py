"""Output files that are either absent (or as before) or complete: never half-written."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_outputs(*paths: str | Path) -> Iterator[list[Path]]:
    """Temporary paths ``PATH.partial`` to write each of ``paths`` to. When the block ends normally
    they are renamed to ``paths`` (each rename is atomic); when it fails or is interrupted they are
    removed, leaving ``paths`` as they were. A disk that fills up or a folder that is read-only
    therefore never leaves a truncated file under an output's name."""
    partials = [Path(path).with_name(Path(path).name + ".partial") for path in paths]
    try:
        yield partials
        for partial, path in zip(partials, paths):
            os.replace(partial, path)
    except BaseException:
        for partial in partials:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
        raise
