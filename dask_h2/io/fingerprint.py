"""What a conversion read: every input file by path, size and content (CRC-32), with the options.

``dask-h2 run`` reuses the store it made only when the inputs and options that made it
are the same again (:func:`conversion_key`); a file's name and modification time are
not enough, since a phenotype file can be edited, or a file replaced by another of the
same size and time.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from isal.isal_zlib import crc32

READ_BYTES = 16 << 20


def file_crc32(path: Path) -> int:
    """CRC-32 of a file's bytes (ISA-L: a few GB/s)."""
    value = 0
    with open(path, "rb") as stream:
        while piece := stream.read(READ_BYTES):
            value = crc32(piece, value)
    return value


def _files(path: Path) -> list[Path]:
    """``path`` itself, or every file under a directory (a VCF Zarr store) in a fixed order."""
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


def fingerprint(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """One entry per file read: resolved path, size in bytes and CRC-32 of the contents."""
    return [{"path": str(file.resolve()), "size": file.stat().st_size, "crc32": file_crc32(file)}
            for path in paths for file in _files(Path(path))]


def conversion_key(inputs: Iterable[Path], options: dict[str, Any]) -> dict[str, Any]:
    """The key of a conversion: the :func:`fingerprint` of its ``inputs`` and its ``options``
    (JSON values), as recorded in the store and compared by ``dask-h2 run``."""
    return {"inputs": fingerprint(inputs), "options": {name: options[name] for name in sorted(options)}}


def describe_difference(recorded: dict[str, Any] | None, current: dict[str, Any]) -> str:
    """What differs between two :func:`conversion_key` values, in a few words."""
    if not recorded:
        return "the store records no conversion key"
    changes = [f"{name} {recorded['options'].get(name)!r} -> {value!r}"
               for name, value in current["options"].items() if recorded["options"].get(name) != value]
    before = {entry["path"]: entry for entry in recorded.get("inputs", [])}
    for entry in current["inputs"]:
        old = before.pop(entry["path"], None)
        if old is None:
            changes.append(f"new input {entry['path']}")
        elif old != entry:
            changes.append(f"{entry['path']} changed")
    changes += [f"{path} no longer read" for path in before]
    return "; ".join(changes) or "no difference"
