"""R genotype vectors narrowed to int8 dosages as they stream past, kept in a spool file.

The attributes of an R vector (``dim``, ``dimnames``) follow its data in the stream, so
a matrix cannot be cut into column blocks while it is read. Instead each large numeric
vector is validated and narrowed to int8 piece by piece straight from the decompressor
into a file (a quarter of R's integers, an eighth of its doubles), and the blocks are
cut from that file once the shape is known. Nothing of the size of the matrix is held
in memory.
"""
from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np

from dask_h2.errors import OutputError

from dask_h2.io.dosage import GENOTYPE_KINDS, narrow

if TYPE_CHECKING:
    from dask_h2.io.rdata_reader import _Parser

PIECE_BYTES = 1 << 20  # of the XDR stream, narrowed at a time
XDR_DTYPES = {"integer": ">i4", "logical": ">i4", "double": ">f8", "raw": "u1"}


@dataclass(kw_only=True)
class DosageVector:
    """An R vector of ``length`` genotype values as int8 dosages (−1 = missing) in R's order.

    The dosages are ``values`` (in memory) or the spool file ``path``. ``bad`` is
    (index, value) of the first value outside {0, 1, 2, NA}; nothing after it was kept.
    """

    kind: str
    length: int
    path: Path | None = None
    values: np.ndarray | None = None
    bad: tuple[int, int | float] | None = None

    def columns(self, start: int, stop: int, *, nrow: int) -> np.ndarray:
        """Columns ``start:stop`` of the matrix with ``nrow`` rows, as (stop − start, nrow)."""
        if self.values is not None:
            return self.values[start * nrow:stop * nrow].reshape(stop - start, nrow)
        block = np.fromfile(self.path, np.int8, count=(stop - start) * nrow, offset=start * nrow)
        return block.reshape(stop - start, nrow)

    def rows(self, start: int, stop: int, *, nrow: int) -> np.ndarray:
        """Rows ``start:stop`` of the matrix with ``nrow`` rows, as (stop − start, ncol)."""
        flat = self.values if self.values is not None else np.memmap(self.path, np.int8, "r", shape=(self.length,))
        return np.ascontiguousarray(flat.reshape(-1, nrow)[:, start:stop].T)  # a copy: the mapping is dropped


def narrow_held(values: np.ndarray, kind: str) -> DosageVector:
    """A vector read whole (native byte order) as dosages in memory."""
    out = np.empty(values.size, np.int8)
    index = narrow(values, kind, out=out)
    return DosageVector(
        kind=kind, length=values.size, values=out, bad=None if index is None else (index, values[index].item())
    )


class Spooler:
    """The reader's hook for large vectors: each genotype-typed vector of at least ``min_values``
    values is narrowed into ``directory/vector<k>.int8``; ``on_piece`` is called as it goes."""

    def __init__(self, directory: Path, *, min_values: int, on_piece: Callable[[_Parser], None] | None = None):
        self.directory = Path(directory)
        self.min_values = min_values
        self.on_piece = on_piece
        self.count = 0

    def __call__(self, kind: str, length: int, parser: _Parser) -> DosageVector | None:
        if kind not in GENOTYPE_KINDS or length < self.min_values:
            return None
        path = self.directory / f"vector{self.count}.int8"
        self.count += 1
        return self.spool(kind, length, parser=parser, path=path)

    def spool(self, kind: str, length: int, *, parser: _Parser, path: Path) -> DosageVector:
        dtype = np.dtype(XDR_DTYPES[kind])
        per_piece = PIECE_BYTES // dtype.itemsize
        buffer = memoryview(bytearray(per_piece * dtype.itemsize))
        out = np.empty(per_piece, np.int8)
        bad = None
        with _spool_file(path, length) as write:
            for start in range(0, length, per_piece):
                count = min(per_piece, length - start)
                parser.read_into(buffer[:count * dtype.itemsize])
                if bad is None:  # after a bad value the rest is only read past
                    values = np.frombuffer(buffer[:count * dtype.itemsize], dtype).astype(dtype.newbyteorder("="))
                    index = narrow(values, kind, out=out[:count])
                    if index is None:
                        write(out[:count])
                    else:
                        bad = (start + index, values[index].item())
                if self.on_piece is not None:
                    self.on_piece(parser)
        return DosageVector(kind=kind, length=length, path=path, bad=bad)


@contextlib.contextmanager
def _spool_file(path: Path, length: int) -> Iterator[Callable[[np.ndarray], None]]:
    """A writer of int8 pieces to ``path``; the disk's errors (full, read-only) are the spool's,
    raised as :class:`OutputError`, not the input's."""
    def fail(exc: OSError) -> OutputError:
        return OutputError.of(exc, path, doing=f"spooling {length:,} genotypes takes {length:,} bytes of disk there")

    try:
        spool_file = open(path, "wb")
    except OSError as exc:
        raise fail(exc) from None

    def write(piece: np.ndarray) -> None:
        try:
            spool_file.write(piece)
        except OSError as exc:
            raise fail(exc) from None

    try:
        yield write
    finally:
        try:
            spool_file.close()
        except OSError as exc:
            raise fail(exc) from None


@contextlib.contextmanager
def spool_directory(store: Path) -> Iterator[Path]:
    """A fresh directory ``STORE.spool`` beside the store for the spool files, removed afterwards."""
    directory = store.with_name(store.name + ".spool")
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
