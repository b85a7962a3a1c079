"""Read an RData file written by R's ``save()`` into plain numpy values.

Every object of the file is parsed by a single sequential pass over the
decompressed XDR stream. Vectors become :class:`RVector` (numpy values, R's NA
kept as its bit pattern for integers and as NaN for doubles); pairlists become
ordered lists of ``(tag, value)``. Environments, closures and other language
objects are skipped over and represented as :class:`ROther`. The stream is
decompressed on a thread of its own (:mod:`.prefetch`); a hook may take over the
values of large vectors as they stream past (the converter's :mod:`.spool`).
"""
from __future__ import annotations

import codecs
import io
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np

from dask_h2.errors import InputError

from dask_h2.io import rdata_format as f
from dask_h2.io.prefetch import Prefetched

_VECTOR_DTYPES = {f.LGLSXP: (">i4", "logical"), f.INTSXP: (">i4", "integer"), f.REALSXP: (">f8", "double"),
                  f.CPLXSXP: (">c16", "complex"), f.RAWSXP: ("u1", "raw")}
_SINGLETONS = (f.GLOBALENV_SXP, f.EMPTYENV_SXP, f.BASEENV_SXP, f.BASENAMESPACE_SXP, f.UNBOUNDVALUE_SXP,
               f.MISSINGARG_SXP)
_NODES = (f.LISTSXP, f.LANGSXP, f.CLOSXP, f.PROMSXP, f.DOTSXP)
_BYTECODE_CELLS = (f.LANGSXP, f.LISTSXP, f.BCREPDEF, f.BCREPREF, f.ATTRLANGSXP, f.ATTRLISTSXP)
READ_PIECE = 1 << 20  # bytes read at a time for a long vector held whole


@dataclass(kw_only=True)
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


@dataclass(kw_only=True)
class ROther:
    """An object dask-h2 does not interpret (environment, closure, language…)."""

    sexptype: int


@dataclass(kw_only=True)
class RSymbol:
    name: str


# (typeof, length, parser) -> the vector's values read by the hook, or None to read them whole
LargeVectorHook = Callable[[str, int, "_Parser"], Any]


class _Parser:
    def __init__(self, stream: BinaryIO, source: str, raw: BinaryIO | None = None,
                 large_vector: LargeVectorHook | None = None):
        self.stream = stream
        self.source = source
        self.raw = raw  # the file under the decompressor
        self.large_vector = large_vector
        self.refs: list[Any] = []
        self.encoding = "utf-8"  # of strings flagged neither UTF-8, Latin-1 nor ASCII

    def fail(self, problem: str) -> InputError:
        return InputError(f"{self.source}: {problem}")

    def read(self, size: int) -> bytes:
        """``size`` bytes of the stream, read a piece at a time: a corrupt length takes memory only
        for the data that is really there (a stream's ``read(size)`` reserves ``size`` at once)."""
        if size < 0:
            raise self.fail(f"corrupt RData file (negative size {size})")
        pieces, remaining = [], size
        while remaining and (piece := self.stream.read(min(remaining, READ_PIECE))):
            pieces.append(piece)
            remaining -= len(piece)
        data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        if len(data) != size:
            raise self.fail("truncated or corrupt RData file (stream ended early)")
        return data

    def read_into(self, buffer: memoryview) -> None:
        """Fill ``buffer`` from the stream."""
        filled = 0
        while filled < len(buffer):
            got = self.stream.readinto(buffer[filled:])
            if not got:
                raise self.fail("truncated or corrupt RData file (stream ended early)")
            filled += got

    def input_position(self) -> int:
        """Bytes of the (compressed) file consumed so far."""
        return self.raw.tell() if self.raw is not None else 0

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
            self.encoding = _python_codec(self.read(self.read_int()).decode("ascii", errors="replace"))
        elif version != 2:
            raise self.fail(f"unsupported serialization version {version}")

    def read_charsxp_body(self, levels: int) -> str | None:
        length = self.read_int()
        if length == -1:
            return None
        raw = self.read(length)
        if levels & f.LATIN1_LEVEL:
            return raw.decode("latin-1")
        return raw.decode("utf-8" if levels & (f.UTF8_LEVEL | f.ASCII_LEVEL) else self.encoding, errors="replace")

    def read_attributes(self, flags: int) -> list[tuple[str, Any]]:
        attributes = self.read_item() if flags & f.HAS_ATTR else []
        if not isinstance(attributes, list) or not all(isinstance(a, tuple) and len(a) == 2 for a in attributes):
            raise self.fail("corrupt RData file (attributes that are not a pairlist)")
        return attributes

    def read_item(self) -> Any:
        return self.read_item_body(self.read_int())

    def read_string(self) -> Any:
        """An element of a character vector: a CHARSXP, read without the general dispatch."""
        flags = self.read_int()
        return self.read_charsxp_body(flags >> 12) if flags & 0xFF == f.CHARSXP else self.read_item_body(flags)

    def read_item_body(self, flags: int) -> Any:
        kind = flags & 0xFF
        levels = flags >> 12
        if kind == f.NILVALUE_SXP:
            return []  # the empty pairlist
        if kind in _SINGLETONS:
            return ROther(sexptype=kind)
        if kind == f.REFSXP:
            index = flags >> 8 or self.read_int()
            if not 0 < index <= len(self.refs):
                raise self.fail(f"corrupt RData file (reference {index} to an unknown object)")
            return self.refs[index - 1]
        if kind == f.SYMSXP:
            symbol = RSymbol(name=self.read_item() or "")
            self.refs.append(symbol)
            return symbol
        if kind in (f.PACKAGESXP, f.NAMESPACESXP, f.PERSISTSXP):
            if self.read_int() != 0:
                raise self.fail("corrupt RData file (bad string vector)")
            other = ROther(sexptype=kind)
            [self.read_item() for _ in range(self.read_int())]
            self.refs.append(other)
            return other
        if kind == f.ENVSXP:
            other = ROther(sexptype=kind)
            self.refs.append(other)
            self.read_int()  # locked
            for _ in range(4):  # enclosure, frame, hash table, attributes
                self.read_item()
            return other
        if kind in _NODES:
            items = self.read_pairlist(flags)
            return items if kind == f.LISTSXP else ROther(sexptype=kind)
        if kind == f.CHARSXP:
            return self.read_charsxp_body(levels)
        if kind in _VECTOR_DTYPES:
            dtype, name = _VECTOR_DTYPES[kind]
            length = self.read_length()
            values = self.large_vector(name, length, self) if self.large_vector is not None else None
            if values is None:
                values = np.frombuffer(self.read(length * np.dtype(dtype).itemsize), dtype=dtype)
                values = values.astype(values.dtype.newbyteorder("="))
            return RVector(kind=name, values=values, attributes=self.read_attributes(flags))
        if kind == f.STRSXP:
            strings = [self.read_string() for _ in range(self.read_length())]  # grows only as the data is there
            return RVector(
                kind="character", values=np.array(strings, dtype=object), attributes=self.read_attributes(flags)
            )
        if kind in (f.VECSXP, f.EXPRSXP):
            length = self.read_length()
            items = [self.read_item() for _ in range(length)]
            return RVector(
                kind="list" if kind == f.VECSXP else "expression", values=items, attributes=self.read_attributes(flags)
            )
        if kind == f.ALTREP_SXP:
            return self.read_altrep()
        other = ROther(sexptype=kind)
        if kind in (f.EXTPTRSXP, f.WEAKREFSXP):
            self.refs.append(other)
            if kind == f.EXTPTRSXP:
                self.read_item(), self.read_item()  # protected value, tag
        elif kind in (f.SPECIALSXP, f.BUILTINSXP):
            self.read(self.read_int())  # name of the primitive
        elif kind == f.BCODESXP:
            self.read_int()  # number of shared language cells
            self.skip_bytecode()
        elif kind != f.S4SXP:
            raise self.fail(f"unsupported R object type {kind} in the RData stream (corrupt file?)")
        self.read_attributes(flags)
        return other

    def read_pairlist(self, flags: int) -> list[tuple[str, Any]]:
        """Pairlist nodes as (tag, value), following the CDR chain iteratively.

        A CDR that is not another node of the same type (a closure's body, the
        metadata of an ALTREP state) ends the list as ``("", value)``.
        """
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
            if flags & 0xFF != kind:
                items.append(("", self.read_item_body(flags)))
                return items

    def skip_bytecode(self) -> None:
        """Consume a byte-code object (R's ReadBC1): its code vector, then its constants."""
        self.read_item()
        for _ in range(self.read_int()):
            kind = self.read_int()
            if kind == f.BCODESXP:
                self.skip_bytecode()
            elif kind in _BYTECODE_CELLS:
                self.skip_bytecode_cell(kind)
            else:
                self.read_item()

    def skip_bytecode_cell(self, kind: int) -> None:
        """Consume one language cell of a byte-code constant (R's ReadBCLang)."""
        if kind == f.BCREPREF:
            self.read_int()
            return
        if kind not in _BYTECODE_CELLS:
            self.read_item()
            return
        if kind == f.BCREPDEF:
            self.read_int()  # position in the table of shared cells
            kind = self.read_int()
        if kind in (f.ATTRLANGSXP, f.ATTRLISTSXP):
            self.read_item()
        self.read_item()  # tag
        self.skip_bytecode_cell(self.read_int())  # CAR
        self.skip_bytecode_cell(self.read_int())  # CDR

    def read_altrep(self) -> Any:
        """An ALTREP object (compact sequence, wrapper, deferred string) as the plain vector it stands for."""
        info, state, attributes = self.read_item(), self.read_item(), self.read_item()
        cls = info[0][1].name if isinstance(info, list) and info and isinstance(info[0][1], RSymbol) else "?"
        try:
            vector = self.expand_altrep(cls, state)
            vector.attributes = attributes  # R gives the object the serialized attributes, never the state's
        except (TypeError, AttributeError, IndexError, ValueError, OverflowError) as exc:
            raise self.fail(f"corrupt ALTREP object of class {cls!r} ({exc})") from None
        return vector

    def expand_altrep(self, cls: str, state: Any) -> RVector:
        if cls in ("compact_intseq", "compact_realseq"):
            n, start, step = (int(v) for v in state.values)  # doubles holding whole numbers
            values = start + step * np.arange(n)
            return RVector(kind="integer" if cls == "compact_intseq" else "double",
                           values=values.astype(np.int32 if cls == "compact_intseq" else np.float64))
        if cls.startswith("wrap_"):
            return state[0][1]
        if cls == "deferred_string":
            (_, source), (_, info) = state
            scipen = int(info.values[0])
            strings = [_r_integer_string(v) if source.kind == "integer" else _r_double_string(v, scipen)
                       for v in source.values]
            return RVector(kind="character", values=np.array(strings, dtype=object))
        raise self.fail(f"unsupported ALTREP class {cls!r} in the RData stream")


def _python_codec(name: str) -> str:
    """Python's codec for an R native encoding name such as ``UTF-8`` or ``latin1``; UTF-8 if unknown."""
    try:
        return codecs.lookup(name).name
    except LookupError:
        return "utf-8"


def _r_integer_string(value: int) -> str | None:
    """as.character() of one integer."""
    return None if value == f.NA_INTEGER else str(int(value))


def _r_double_string(value: float, scipen: int) -> str | None:
    """as.character() of one double as R's formatReal() writes it: at most 15 significant
    digits, in fixed notation unless scientific notation is narrower by more than ``scipen``."""
    if np.isnan(value):
        is_na = np.float64(value).view(np.uint64) & 0xFFFFFFFF == f.NA_REAL_BITS & 0xFFFFFFFF  # as R's ISNA()
        return None if is_na else "NaN"
    if np.isinf(value):
        return "Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    mantissa, exponent = format(abs(value), ".14e").split("e")
    digits, power = len(mantissa.replace(".", "").rstrip("0")), int(exponent)
    decimals = max(0, digits - power - 1)
    fixed_width = max(power + 1, 1) + decimals + (decimals > 0)
    scientific_width = digits + (digits > 1) + 4 + (power >= 100 or power <= -99)
    return f"{value:.{decimals}f}" if fixed_width <= scientific_width + scipen else f"{value:.{digits - 1}e}"


def read_rdata(path: str | Path, large_vector: LargeVectorHook | None = None) -> list[tuple[str, Any]]:
    """Every top-level object of an RData file as ``(name, value)`` in file order.

    ``large_vector`` may take over the values of any atomic vector as they stream past
    (see :class:`dask_h2.io.spool.Spooler`); by default every vector is read whole.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    with open(path, "rb") as raw, io.BufferedReader(Prefetched(f.open_decompressed(raw)), f.READ_BUFFER) as stream:
        parser = _Parser(stream, str(path), raw, large_vector)
        try:
            magic = stream.read(5)
        except (*f.DECOMPRESSION_ERRORS, ValueError) as exc:
            raise InputError(f"{path}: corrupt compressed file ({exc})") from None
        if magic not in f.MAGIC:
            raise InputError(f"{path}: not an RData file written by save() (unknown header {magic!r})")
        try:
            parser.read_header()
            objects = parser.read_item()
        except (*f.DECOMPRESSION_ERRORS, ValueError, MemoryError, RecursionError) as exc:
            raise InputError(f"{path}: truncated or corrupt RData file ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(objects, list):
        raise InputError(f"{path}: not an RData file written by save() (no list of objects)")
    return objects
