"""GCTA's binary GRM: ``PREFIX.grm.bin``, ``PREFIX.grm.N.bin`` and ``PREFIX.grm.id``.

``.grm.bin`` holds the lower triangle of K including the diagonal, row by row
(K[0,0], K[1,0], K[1,1], K[2,0], …), as little-endian float32; ``.grm.N.bin`` the number
of markers behind each entry, in the same order and type; ``.grm.id`` one ``FID IID``
line per sample, tab-separated, in the order of the rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dask_h2.errors import InputError, output_errors
from dask_h2.planning import check_driver_memory
from dask_h2.checks import check_unique
from dask_h2.io.outputs import atomic_outputs

FLOAT = np.dtype("<f4")


@dataclass(frozen=True, kw_only=True)
class GCTAGRM:
    """K (n, n) float64 (from float32), markers per entry (n, n) or None without .grm.N.bin, FIDs and IIDs (n,)."""

    kinship: np.ndarray
    n_markers: np.ndarray | None
    fid: np.ndarray
    iid: np.ndarray


def pack_lower(matrix: np.ndarray) -> np.ndarray:
    """The lower triangle of a square (n, n) matrix, diagonal included, row-major: (n(n+1)/2,) float32."""
    return np.asarray(matrix)[np.tril_indices(matrix.shape[0])].astype(FLOAT)


def unpack_lower(values: np.ndarray, n: int) -> np.ndarray:
    """The symmetric (n, n) float64 matrix whose row-major lower triangle is ``values`` (n(n+1)/2,)."""
    rows, columns = np.tril_indices(n)
    matrix = np.empty((n, n))
    matrix[rows, columns] = values
    matrix[columns, rows] = values
    return matrix


def paths(prefix: str | Path) -> tuple[Path, Path, Path]:
    """(``PREFIX.grm.bin``, ``PREFIX.grm.N.bin``, ``PREFIX.grm.id``)."""
    return tuple(Path(f"{prefix}.grm.{suffix}") for suffix in ("bin", "N.bin", "id"))


def write_grm(prefix: str | Path, kinship: np.ndarray, *, iid: np.ndarray, n_markers: int | np.ndarray,
              fid: np.ndarray | None = None) -> list[Path]:
    """Write K (n, n) with its IIDs (n,) and markers per entry (a count or (n, n)); FID defaults to the IID."""
    bin_path, n_path, id_path = paths(prefix)
    bin_path.parent.mkdir(parents=True, exist_ok=True)
    n = kinship.shape[0]
    fid = iid if fid is None else fid
    with output_errors(f"{prefix}.grm.*", "writing the GCTA GRM"), \
            atomic_outputs(bin_path, n_path, id_path) as (bin_partial, n_partial, id_partial):
        for partial, values in (
            (bin_partial, kinship),
            (n_partial, np.broadcast_to(np.asarray(n_markers, float), (n, n))),
        ):
            with open(partial, "wb") as out:  # not ndarray.tofile: its errors lose the cause (disk full, ...)
                out.write(pack_lower(values).data)
        id_partial.write_text("".join(f"{f}\t{i}\n" for f, i in zip(fid, iid)))
    return [bin_path, n_path, id_path]


def read_grm(prefix: str | Path) -> GCTAGRM:
    """Read a GCTA GRM; ``.grm.N.bin`` is optional. Sizes are checked against the IDs."""
    bin_path, n_path, id_path = paths(prefix)
    for path in (id_path, bin_path):
        if not path.is_file():
            raise InputError(f"{path}: no such file (a GCTA GRM is PREFIX.grm.bin with PREFIX.grm.id)")
    rows = [line.split() for line in id_path.read_text().splitlines() if line.strip()]
    if not rows or any(len(row) < 2 for row in rows):
        raise InputError(f"{id_path}: expected one 'FID IID' line per sample")
    n = len(rows)
    check_driver_memory(n, str(bin_path))
    check_unique(np.array([r[1] for r in rows]), where=str(id_path), what="IID")
    kinship = unpack_lower(_read_floats(bin_path, n), n)
    n_markers = unpack_lower(_read_floats(n_path, n), n) if n_path.is_file() else None
    return GCTAGRM(kinship=kinship, n_markers=n_markers, fid=np.array([r[0] for r in rows], dtype=object),
                   iid=np.array([r[1] for r in rows], dtype=object))


def _read_floats(path: Path, n: int) -> np.ndarray:
    expected = n * (n + 1) // 2
    size = path.stat().st_size
    if size != expected * FLOAT.itemsize:
        raise InputError(f"{path}: {size} bytes, expected {expected * FLOAT.itemsize} "
                         f"(float32 lower triangle of {n} samples listed in the .grm.id)")
    values = np.fromfile(path, dtype=FLOAT).astype(np.float64)
    if not np.isfinite(values).all():
        raise InputError(
            f"{path}: non-finite value at entry {np.argmin(np.isfinite(values)) + 1} of the lower triangle"
        )
    return values


def write_grm_list(path: str | Path, prefixes: list[str | Path]) -> Path:
    """GCTA's list of several GRMs (its ``--mgrm`` file): one GRM prefix per line."""
    path = Path(path)
    with output_errors(str(path), "writing GCTA's list of GRMs"), atomic_outputs(path) as (partial,):
        partial.write_text("".join(f"{prefix}\n" for prefix in prefixes))
    return path
