"""Constants of R's serialization format (XDR binary, versions 2 and 3) and file opening.

Reference: R's src/main/serialize.c. An RData file from ``save()`` is a magic line
(``RDX2``/``RDX3``), the serialization header, then one pairlist whose tags are the
object names.
"""
from __future__ import annotations

import bz2
import io
import lzma
from pathlib import Path
from typing import BinaryIO

from isal import igzip, igzip_lib, igzip_threaded

# SEXP types
NILSXP, SYMSXP, LISTSXP, CLOSXP, ENVSXP, PROMSXP, LANGSXP, SPECIALSXP, BUILTINSXP = 0, 1, 2, 3, 4, 5, 6, 7, 8
CHARSXP, LGLSXP, INTSXP, REALSXP, CPLXSXP, STRSXP = 9, 10, 13, 14, 15, 16
DOTSXP, VECSXP, EXPRSXP, BCODESXP, EXTPTRSXP, WEAKREFSXP, RAWSXP, S4SXP = 17, 19, 20, 21, 22, 23, 24, 25
# pseudo-SEXP types of the stream
REFSXP, NILVALUE_SXP, GLOBALENV_SXP, UNBOUNDVALUE_SXP, MISSINGARG_SXP = 255, 254, 253, 252, 251
BASENAMESPACE_SXP, NAMESPACESXP, PACKAGESXP, PERSISTSXP = 250, 249, 248, 247
BCREPDEF, BCREPREF, EMPTYENV_SXP, BASEENV_SXP, ATTRLANGSXP, ATTRLISTSXP, ALTREP_SXP = 244, 243, 242, 241, 240, 239, 238

IS_OBJECT, HAS_ATTR, HAS_TAG = 1 << 8, 1 << 9, 1 << 10
LATIN1_LEVEL, UTF8_LEVEL, ASCII_LEVEL = 1 << 2, 1 << 3, 1 << 6

NA_INTEGER = -(2**31)
NA_REAL_BITS = 0x7FF00000000007A2  # R's NA_real_: a NaN whose low word is 1954
R_VERSION_WRITTEN = (4 << 16) | (2 << 8) | 0  # we write "R 4.2.0"
MIN_READER = {2: (2 << 16) | (3 << 8), 3: (3 << 16) | (5 << 8)}  # R 2.3.0, R 3.5.0

MAGIC = {b"RDX2\n": 2, b"RDX3\n": 3}
COMPRESSIONS = ("gzip", "bzip2", "xz", "none")
WRITE_BUFFER = READ_BUFFER = 1 << 20
# what a damaged or cut compressed stream raises while it is read
DECOMPRESSION_ERRORS = (OSError, EOFError, igzip_lib.IsalError, lzma.LZMAError)


def open_decompressed(raw: BinaryIO) -> BinaryIO:
    """The bytes of the open file ``raw`` after whichever of gzip, bzip2, xz or no compression it uses."""
    head = raw.read(6)
    raw.seek(0)
    if head[:2] == b"\x1f\x8b":  # ISA-L's reader itself: it inflates straight into readinto's buffer, without the GIL
        return io.BufferedReader(igzip._IGzipReader(raw), READ_BUFFER)
    if head[:3] == b"BZh":
        return bz2.open(raw, "rb")
    if head[:6] == b"\xfd7zXZ\x00":
        return lzma.open(raw, "rb")
    return raw


def open_compressed(path: str | Path, compression: str) -> BinaryIO:
    """A buffered, writable binary stream to ``path`` compressed with ``compression``
    (gzip: ISA-L level 1 in a background thread)."""
    if compression == "gzip":
        return igzip_threaded.open(path, "wb", compresslevel=1, threads=1)
    if compression == "bzip2":
        return io.BufferedWriter(bz2.open(path, "wb"), WRITE_BUFFER)
    if compression == "xz":
        return io.BufferedWriter(lzma.open(path, "wb"), WRITE_BUFFER)
    if compression == "none":
        return open(path, "wb", buffering=WRITE_BUFFER)
    raise ValueError(f"unknown compression {compression!r}; expected one of {COMPRESSIONS}")
