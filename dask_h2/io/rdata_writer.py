"""Write named R matrices to an RData file, streaming their columns (the inverse of the reader).

Each matrix arrives as blocks of whole columns, so a samples × markers genotype
matrix of any size is written in bounded memory; R loads the result with ``load()``.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Sequence

import numpy as np

from dask_h2.io.outputs import atomic_outputs

from dask_h2.io import rdata_format as f


@dataclass(kw_only=True)
class RMatrix:
    """An nrow × ncol R matrix given as column blocks.

    ``blocks`` yields arrays (k, nrow) of k consecutive columns: int32 with
    ``NA_INTEGER`` for an integer matrix, float64 with NaN = NA for a double one.
    """

    kind: str  # "integer" or "double"
    nrow: int
    ncol: int
    blocks: Iterable[np.ndarray]
    rownames: Sequence[str] | None = None
    colnames: Sequence[str] | None = None


def _int(out: BinaryIO, value: int) -> None:
    out.write(struct.pack(">i", value))


def _length(out: BinaryIO, length: int) -> None:
    if length > 2**31 - 1:
        _int(out, -1)
        out.write(struct.pack(">II", length >> 32, length & 0xFFFFFFFF))
    else:
        _int(out, length)


def _charsxp(out: BinaryIO, text: str | None) -> None:
    if text is None:
        _int(out, f.CHARSXP)
        _int(out, -1)
        return
    raw = text.encode("utf-8")
    level = f.ASCII_LEVEL if raw.isascii() else f.UTF8_LEVEL
    _int(out, f.CHARSXP | (level << 12))
    _int(out, len(raw))
    out.write(raw)


def _symbol(out: BinaryIO, name: str) -> None:
    _int(out, f.SYMSXP)
    _charsxp(out, name)


def _strings(out: BinaryIO, values: Sequence[str]) -> None:
    _int(out, f.STRSXP)
    _length(out, len(values))
    for value in values:
        _charsxp(out, value)


def _matrix(out: BinaryIO, matrix: RMatrix, source: str) -> None:
    if matrix.kind not in ("integer", "double"):
        raise ValueError(f"{source}: matrix kind {matrix.kind!r}, expected 'integer' or 'double'")
    for names, size, what in ((matrix.rownames, matrix.nrow, "row"), (matrix.colnames, matrix.ncol, "column")):
        if names is not None and len(names) != size:
            raise ValueError(f"{source}: {len(names)} {what} names for {size} {what}s")
    sexptype, dtype = (f.INTSXP, ">i4") if matrix.kind == "integer" else (f.REALSXP, ">f8")
    _int(out, sexptype | f.HAS_ATTR)
    _length(out, matrix.nrow * matrix.ncol)
    written = 0
    for block in matrix.blocks:
        block = np.asarray(block)
        if block.ndim != 2 or block.shape[1] != matrix.nrow:
            raise ValueError(f"{source}: column block of shape {block.shape}, expected (k, {matrix.nrow})")
        encoded = block.astype(dtype, order="C")
        if sexptype == f.REALSXP:
            encoded.view(">u8")[np.isnan(block)] = f.NA_REAL_BITS
        out.write(encoded)
        written += block.shape[0]
    if written != matrix.ncol:
        raise ValueError(f"{source}: {written} columns written, expected {matrix.ncol}")
    _int(out, f.LISTSXP | f.HAS_TAG)
    _symbol(out, "dim")
    _int(out, f.INTSXP)
    _length(out, 2)
    out.write(np.array([matrix.nrow, matrix.ncol], dtype=">i4").tobytes())
    if matrix.rownames is not None or matrix.colnames is not None:
        _int(out, f.LISTSXP | f.HAS_TAG)
        _symbol(out, "dimnames")
        _int(out, f.VECSXP)
        _length(out, 2)
        for names in (matrix.rownames, matrix.colnames):
            if names is None:
                _int(out, f.NILVALUE_SXP)
            else:
                _strings(out, [str(n) for n in names])
    _int(out, f.NILVALUE_SXP)


def write_rdata(
    path: str | Path, objects: Iterable[tuple[str, RMatrix]], *, version: int = 3, compression: str = "gzip"
) -> None:
    """Write ``objects`` (name, matrix) as R's ``save()`` would, in the order given.

    ``objects`` may be a generator: each matrix is requested only after the previous
    one has been written. The file appears under its name only once complete; on
    failure nothing is left behind.
    """
    if version not in f.MIN_READER:
        raise ValueError(f"RData version must be 2 or 3, not {version}")
    path = Path(path)
    with atomic_outputs(path) as (partial,), f.open_compressed(partial, compression) as out:
        out.write(b"RDX%d\nX\n" % version)
        for value in (version, f.R_VERSION_WRITTEN, f.MIN_READER[version]):
            _int(out, value)
        if version == 3:
            _int(out, len(b"UTF-8"))
            out.write(b"UTF-8")
        for name, matrix in objects:
            _int(out, f.LISTSXP | f.HAS_TAG)
            _symbol(out, name)
            _matrix(out, matrix, f"{path}: object {name!r}")
        _int(out, f.NILVALUE_SXP)
