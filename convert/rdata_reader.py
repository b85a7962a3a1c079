"""Read an RData file written by R's ``save()`` into plain numpy values.

Every object of the file is parsed by a single sequential pass over the
decompressed XDR stream. Vectors become :class:`RVector` (numpy values, R's NA
kept as its bit pattern for integers and as NaN for doubles); pairlists become
ordered lists of ``(tag, value)``. Environments, closures and other language
objects are skipped over and represented as :class:`ROther`.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from dask_h2.errors import InputError

from . import rdata_format as f

_VECTOR_DTYPES = {f.LGLSXP: (">i4", "logical"), f.INTSXP: (">i4", "integer"), f.REALSXP: (">f8", "double"),
                  f.CPLXSXP: (">c16", "complex"), f.RAWSXP: ("u1", "raw")}


@dataclass
class RVector:
    """An atomic vector or list: ``kind`` is R's typeof(); ``values`` numpy or list."""

    kind: str
    values: Any
    attributes: list[tuple[str, Any]] = field(default_factory=list)

    def attribute(self, name: str) -> Any:
        return next((value for tag, value in self.attributes if tag == name), None)

    @property
    def dim(self) -> tuple[int, ...] | None:
        dim = self.attribute("dim")
        return None if dim is None else tuple(int(d) for d in dim.values)

    @property
    def names(self) -> list[str] | None:
        names = self.attribute("names")
        return None if names is None else list(names.values)

    @property
    def classes(self) -> list[str]:
        cls = self.attribute("class")
        return [] if cls is None else list(cls.values)


@dataclass
class ROther:
    """An object dask-h2 does not interpret (environment, closure, language…)."""

    sexptype: int


@dataclass
class RSymbol:
    name: str


class _Parser:
    def __init__(self, stream: BinaryIO, source: str):
        self.stream = stream
        self.source = source
        self.refs: list[Any] = []

    def fail(self, problem: str) -> InputError:
        return InputError(f"{self.source}: {problem}")

    def read(self, size: int) -> bytes:
        data = self.stream.read(size)
        if len(data) != size:
            raise self.fail("truncated or corrupt RData file (stream ended early)")
        return data

    def read_int(self) -> int:
        return struct.unpack(">i", self.read(4))[0]

    def read_length(self) -> int:
        length = self.read_int()
        if length == -1:
            upper, lower = struct.unpack(">II", self.read(8))
            return (upper << 32) | lower
        if length < 0:
            raise self.fail(f"corrupt RData file (negative length {length})")
        return length

    def read_header(self) -> None:
        if self.read(2) != b"X\n":
            raise self.fail("only XDR (binary) RData files are supported; re-save with save(..., ascii = FALSE)")
        version = self.read_int()
        self.read_int(), self.read_int()  # writer's R version, minimal reader version
        if version == 3:
            self.read(self.read_int())  # native encoding name
        elif version != 2:
            raise self.fail(f"unsupported serialization version {version}")

    def read_charsxp_body(self, levels: int) -> str | None:
        length = self.read_int()
        if length == -1:
            return None
        raw = self.read(length)
        return raw.decode("latin-1") if levels & (1 << 2) else raw.decode("utf-8", errors="replace")

    def read_attributes(self, flags: int) -> list[tuple[str, Any]]:
        return self.read_item() if flags & f.HAS_ATTR else []

    def read_item(self) -> Any:
        return self.read_item_body(self.read_int())

    def read_item_body(self, flags: int) -> Any:
        kind = flags & 0xFF
        levels = flags >> 12
        if kind == f.NILVALUE_SXP:
            return []  # the empty pairlist
        if kind in (f.GLOBALENV_SXP, f.EMPTYENV_SXP, f.BASEENV_SXP, f.BASENAMESPACE_SXP,
                    f.UNBOUNDVALUE_SXP, f.MISSINGARG_SXP):
            return ROther(kind)
        if kind == f.REFSXP:
            index = flags >> 8 or self.read_int()
            return self.refs[index - 1]
        if kind == f.SYMSXP:
            symbol = RSymbol(self.read_item() or "")
            self.refs.append(symbol)
            return symbol
        if kind in (f.PACKAGESXP, f.NAMESPACESXP, f.PERSISTSXP):
            if self.read_int() != 0:
                raise self.fail("corrupt RData file (bad string vector)")
            other = ROther(kind)
            [self.read_item() for _ in range(self.read_int())]
            self.refs.append(other)
            return other
        if kind == f.ENVSXP:
            other = ROther(kind)
            self.refs.append(other)
            self.read_int()  # locked
            for _ in range(4):  # enclosure, frame, hash table, attributes
                self.read_item()
            return other
        if kind in (f.LISTSXP, f.LANGSXP, f.CLOSXP, f.PROMSXP, f.DOTSXP, f.ATTRLANGSXP, f.ATTRLISTSXP):
            return self.read_pairlist(flags)
        if kind == f.CHARSXP:
            return self.read_charsxp_body(levels)
        if kind in _VECTOR_DTYPES:
            dtype, name = _VECTOR_DTYPES[kind]
            length = self.read_length()
            values = np.frombuffer(self.read(length * np.dtype(dtype).itemsize), dtype=dtype)
            values = values.astype(values.dtype.newbyteorder("="))
            return RVector(name, values, self.read_attributes(flags))
        if kind == f.STRSXP:
            length = self.read_length()
            values = np.empty(length, dtype=object)
            for i in range(length):
                values[i] = self.read_item()
            return RVector("character", values, self.read_attributes(flags))
        if kind in (f.VECSXP, f.EXPRSXP):
            length = self.read_length()
            items = [self.read_item() for _ in range(length)]
            return RVector("list" if kind == f.VECSXP else "expression", items, self.read_attributes(flags))
        if kind == f.ALTREP_SXP:
            return self.read_altrep()
        if kind == f.S4SXP:
            self.read_attributes(flags)
            return ROther(kind)
        raise self.fail(f"unsupported R object type {kind} in the RData stream (corrupt file?)")

    def read_pairlist(self, flags: int) -> list[tuple[str, Any]]:
        """Pairlist nodes as (tag, value), following the CDR chain iteratively."""
        items: list[tuple[str, Any]] = []
        while True:
            kind = flags & 0xFF
            if flags & f.HAS_ATTR:
                self.read_item()
            tag = self.read_item() if flags & f.HAS_TAG else None
            name = tag.name if isinstance(tag, RSymbol) else ""
            items.append((name, self.read_item()))
            flags = self.read_int()
            if flags & 0xFF == f.NILVALUE_SXP:
                return items
            if flags & 0xFF != kind:  # a CDR that is not another node (a closure's body)
                self.read_item_body(flags)
                return items

    def read_altrep(self) -> Any:
        info, state, attributes = self.read_item(), self.read_item(), self.read_item()
        cls = info[0][1].name if info and isinstance(info[0][1], RSymbol) else "?"
        if cls in ("compact_intseq", "compact_realseq"):
            n, start, step = (float(v) for v in state.values[:3])
            values = start + step * np.arange(int(n))
            vector = RVector("integer" if cls == "compact_intseq" else "double",
                             values.astype(np.int32 if cls == "compact_intseq" else np.float64))
        elif cls.startswith("wrap_"):
            vector = state[0][1]
        elif cls == "deferred_string":
            source = state[0][1]
            vector = RVector("character", np.array([_r_number_string(v) for v in source.values], dtype=object))
        else:
            raise self.fail(f"unsupported ALTREP class {cls!r} in the RData stream")
        vector.attributes = attributes or vector.attributes
        return vector


def _r_number_string(value: Any) -> str | None:
    """as.character() of one integer or double, as R prints it."""
    if isinstance(value, (np.integer, int)):
        return None if value == f.NA_INTEGER else str(int(value))
    if np.isnan(value):
        return None
    return format(float(value), ".15g")


def read_rdata(path: str | Path) -> list[tuple[str, Any]]:
    """Every top-level object of an RData file as ``(name, value)`` in file order."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    with f.open_decompressed(path) as stream:
        parser = _Parser(stream, str(path))
        try:
            magic = stream.read(5)
        except (OSError, EOFError, ValueError) as exc:
            raise InputError(f"{path}: corrupt compressed file ({exc})") from None
        if magic not in f.MAGIC:
            raise InputError(f"{path}: not an RData file written by save() (unknown header {magic!r})")
        try:
            parser.read_header()
            objects = parser.read_item()
        except (OSError, EOFError, ValueError, struct.error) as exc:
            raise InputError(f"{path}: truncated or corrupt RData file ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(objects, list):
        raise InputError(f"{path}: not an RData file written by save() (no list of objects)")
    return objects
