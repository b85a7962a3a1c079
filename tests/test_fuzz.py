"""Corrupt inputs (Hypothesis): random truncations, bit flips and inflated lengths in the RData and
PLINK .bed readers. Whatever the damage, converting the file raises only InputError (one line for
the user), within a bounded time and without a large allocation made from a corrupt length."""
from __future__ import annotations

import gzip
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from bed_reader import to_bed

hypothesis = pytest.importorskip("hypothesis", reason="the fuzz tests need Hypothesis (pip install hypothesis)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from dask_h2.io.bed_input import bed_source  # noqa: E402
from dask_h2.io.rdata_input import rdata_source  # noqa: E402
from dask_h2.io.rdata_writer import RMatrix, write_rdata  # noqa: E402
from dask_h2.errors import InputError  # noqa: E402

N, M = 12, 40
PEAK_BYTES = 32 << 20  # far above what these small files need, far below a length read as 2**31 or more
FUZZ = settings(max_examples=120, deadline=5000, suppress_health_check=[HealthCheck.function_scoped_fixture],
                derandomize=True)
RNG = np.random.default_rng(5)
GENOTYPES = RNG.integers(0, 3, (N, M))
GENOTYPES[RNG.random((N, M)) < 0.05] = -1


def _rdata_bytes(folder: Path) -> bytes:
    """An uncompressed RData file as dask-h2 reads them: genotypes with dimnames, a phenotype matrix."""
    path = folder / "valid.RData"
    columns = np.where(GENOTYPES < 0, -(2**31), GENOTYPES).astype(np.int32).T
    write_rdata(
        path,
        [
            (
                "G",
                RMatrix(
                    kind="integer",
                    nrow=N,
                    ncol=M,
                    blocks=[columns],
                    rownames=[f"s{i}" for i in range(N)],
                    colnames=[f"m{j}" for j in range(M)],
                ),
            ),
            (
                "Y",
                RMatrix(
                    kind="double",
                    nrow=N,
                    ncol=2,
                    blocks=[RNG.normal(size=(2, N))],
                    rownames=[f"s{i}" for i in range(N)],
                    colnames=["a", "b"],
                ),
            ),
        ],
        compression="none",
    )
    return path.read_bytes()


def _convert_all(source) -> None:
    """What `dask-h2 convert` asks of a source: every block, then the phenotypes."""
    for start in range(0, source.n_variants, 16):
        block = source.read_block(start, min(start + 16, source.n_variants))
        assert block.dtype == np.int8 and block.shape == (min(16, source.n_variants - start), source.n_samples)
    traits, names = source.phenotypes()
    assert traits.shape == (source.n_samples, len(names))


def _only_input_errors(read) -> None:
    tracemalloc.start()
    try:
        read()
    except InputError as exc:
        assert "\n" not in str(exc)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < PEAK_BYTES, f"{peak} bytes allocated"


@pytest.fixture(scope="module")
def rdata_file(tmp_path_factory) -> Path:
    """The valid file (a path: Hypothesis would print its bytes with every failing example)."""
    folder = tmp_path_factory.mktemp("fuzz")
    _rdata_bytes(folder)
    return folder / "valid.RData"


def _check_rdata(folder: Path, content: bytes, name: str = "damaged.RData") -> None:
    path = folder / name
    path.write_bytes(content)
    (folder / "spool").mkdir(exist_ok=True)
    _only_input_errors(lambda: _convert_all(rdata_source(path, spool_dir=folder / "spool")))


@FUZZ
@given(cut=st.floats(0.0, 1.0, exclude_max=True), compress=st.booleans())
def test_truncated_rdata(rdata_file, tmp_path, cut, compress):
    valid_rdata = rdata_file.read_bytes()
    data = gzip.compress(valid_rdata) if compress else valid_rdata
    _check_rdata(tmp_path, data[:int(cut * len(data))])


@FUZZ
@given(flips=st.lists(st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 7)), min_size=1, max_size=8),
       compress=st.booleans())
def test_rdata_with_bits_flipped(rdata_file, tmp_path, flips, compress):
    data = bytearray(rdata_file.read_bytes())
    for where, bit in flips:
        data[int(where * len(data))] ^= 1 << bit
    _check_rdata(tmp_path, gzip.compress(bytes(data)) if compress else bytes(data))


@FUZZ
@given(where=st.integers(0, 10**6), value=st.sampled_from([2**31 - 1, 2**30, 2**24 + 1, -1, -2, 10**9]),
       long_length=st.integers(0, 2**40))
def test_rdata_with_an_inflated_length(rdata_file, tmp_path, where, value, long_length):
    """An int32 of the stream (4-byte aligned after the 5-byte magic, as R writes them) replaced by a
    huge or negative length; -1 announces a 64-bit long length, which follows."""
    data = bytearray(rdata_file.read_bytes())
    offset = 5 + 4 * (where % ((len(data) - 9) // 4))
    data[offset:offset + 4] = struct.pack(">i", value)
    if value == -1:
        data[offset + 4:offset + 4] = struct.pack(">II", long_length >> 32, long_length & 0xFFFFFFFF)
    _check_rdata(tmp_path, bytes(data))


@pytest.fixture(scope="module")
def bed_file(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz_bed")
    ids = [f"s{i}" for i in range(N)]
    to_bed(folder / "valid.bed", np.where(GENOTYPES < 0, np.nan, GENOTYPES).astype(np.float32),
           properties={"iid": ids, "fid": ids, "sid": [f"m{j}" for j in range(M)]})
    return folder / "valid.bed"


def _bed_files(bed: Path) -> dict[str, bytes]:
    return {suffix: bed.with_suffix(suffix).read_bytes() for suffix in (".bed", ".bim", ".fam")}


def _check_bed(folder: Path, files: dict[str, bytes]) -> None:
    for suffix, content in files.items():
        (folder / f"damaged{suffix}").write_bytes(content)
    _only_input_errors(lambda: _convert_all(bed_source(folder / "damaged.bed")))


@FUZZ
@given(which=st.sampled_from([".bed", ".bim", ".fam"]), cut=st.floats(0.0, 1.0, exclude_max=True))
def test_truncated_plink_files(bed_file, tmp_path, which, cut):
    files = _bed_files(bed_file)
    files[which] = files[which][:int(cut * len(files[which]))]
    _check_bed(tmp_path, files)


@FUZZ
@given(which=st.sampled_from([".bed", ".bim", ".fam"]),
       flips=st.lists(st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 7)), min_size=1, max_size=8))
def test_plink_files_with_bits_flipped(bed_file, tmp_path, which, flips):
    files = _bed_files(bed_file)
    data = bytearray(files[which])
    for where, bit in flips:
        data[int(where * len(data))] ^= 1 << bit
    files[which] = bytes(data)
    _check_bed(tmp_path, files)


def test_the_valid_files_convert(rdata_file, bed_file, tmp_path):
    """The fixtures themselves are valid: the damage, not the files, is what the tests above probe."""
    (tmp_path / "spool").mkdir()
    source = rdata_source(rdata_file, spool_dir=tmp_path / "spool")
    _convert_all(source)
    np.testing.assert_array_equal(source.read_block(0, M), GENOTYPES.T)
    bed = bed_source(bed_file)
    _convert_all(bed)
    np.testing.assert_array_equal(bed.read_block(0, M), GENOTYPES.T)
