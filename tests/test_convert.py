"""The streaming RData converter against real R: R saves the inputs and writes the expected store.

Each file is converted with its genotype matrix streamed through the spool (the
threshold lowered so that a 300 × 5000 matrix counts as large, and the pieces made
small and odd so that values straddle them) and compared with what R says: dosages as
int8 in call_dosage order, the sample and marker names, the phenotypes bit for bit.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import zarr

from dask_h2 import api
from dask_h2.io import rdata_format as fmt
from dask_h2.io import rdata_input, sources, spool
from dask_h2.store import ATTRS_KEY

from test_rdata import run_r


N_SAMPLES, N_MARKERS, CHUNK = 300, 5000, 128

R_FIXTURES = r"""
out <- commandArgs(TRUE)[1]
set.seed(7)
n <- 300L; m <- 5000L
G <- matrix(sample(c(0L, 1L, 2L, NA), n * m, TRUE, prob = c(.5, .3, .15, .05)), n, m,
            dimnames = list(paste0("s", 1:n), paste0("rs", 1:m)))
Y <- matrix(rnorm(n * 2), n, 2, dimnames = list(rownames(G), c("height", "bmi"))); Y[3, 1] <- NA
DF <- data.frame(height = Y[, 1], count = sample(c(1L, 2L, NA), n, TRUE), row.names = rownames(G))
D <- G; storage.mode(D) <- "double"
B <- G > 0L
R <- matrix(as.raw(ifelse(is.na(G), 0L, G)), n, m, dimnames = dimnames(G))
Tr <- t(G)
U <- unname(G); P <- unname(Y)
L <- list(X = G, y = Y)
f <- function(name) file.path(out, name)
save(G, Y, file = f("gzip3.RData"))
save(Tr, Y, file = f("transposed.RData"), compress = "bzip2")
save(DF, G, file = f("dataframe.RData"), compress = "xz")
save(L, file = f("list.RData"), compress = FALSE, version = 2)
save(D, Y, file = f("double.RData"))
save(B, Y, file = f("logical.RData"))
save(R, Y, file = f("raw.RData"))
save(U, P, file = f("unnamed.RData"))
dosage <- function(x, name) writeBin(as.integer(ifelse(is.na(x), -1L, x)), f(name), size = 1L)
dosage(G, "G.int8"); dosage(B + 0L, "B.int8"); dosage(ifelse(is.na(G), 0L, G), "R.int8")
writeBin(as.vector(Y), f("Y.f8"), endian = "little")
writeBin(c(DF$height, as.double(DF$count)), f("DF.f8"), endian = "little")
writeLines(rownames(G), f("samples.txt")); writeLines(colnames(G), f("markers.txt"))
cat("fixtures written\n")
"""

# file -> (expected dosages, expected phenotypes, trait names, genotype object, transposed)
CASES = {
    "gzip3": ("G", "Y", ["height", "bmi"], "G", False),
    "transposed": ("G", "Y", ["height", "bmi"], "Tr", True),
    "dataframe": ("G", "DF", ["height", "count"], "G", False),
    "list": ("G", "Y", ["height", "bmi"], "L$X", False),
    "double": ("G", "Y", ["height", "bmi"], "D", False),
    "logical": ("B", "Y", ["height", "bmi"], "B", False),
    "raw": ("R", "Y", ["height", "bmi"], "R", False),
}


@pytest.fixture(scope="module")
def r_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("r_convert")
    assert "fixtures written" in run_r(R_FIXTURES, str(out), cwd=out).stdout
    return out


@pytest.fixture
def streamed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every genotype-sized vector streams, in pieces of 1,000 bytes (250 integers, 125 doubles)."""
    monkeypatch.setattr(rdata_input, "SPOOL_MIN_VALUES", 10_000)
    monkeypatch.setattr(spool, "PIECE_BYTES", 1000)


def expected_dosage(r_files: Path, name: str) -> np.ndarray:
    """(markers, samples): R's column-major samples × markers matrix is call_dosage's C order."""
    return np.fromfile(r_files / f"{name}.int8", np.int8).reshape(N_MARKERS, N_SAMPLES)


def convert(path: Path, store: Path, **options) -> zarr.Group:
    api.convert(path, store, chunk_variants=CHUNK, progress=False, **options)
    assert not store.with_name(store.name + ".spool").exists()
    return zarr.open_group(store, mode="r")


def test_the_spool_is_gone_before_the_store_is_marked_complete(tmp_path: Path, streamed: None,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A run killed between marking the store complete and its end leaves no spool beside the store."""
    rdata = api.simulate(tmp_path / "small.RData", n_samples=60, n_markers=300, h2=[0.5], progress=False)
    store = tmp_path / "out.zarr"
    spool_dir = store.with_name("out.zarr.spool")
    seen = {}
    for name in ("write_traits", "mark_complete"):
        def spy(*args, real=getattr(sources, name), name=name, **kwargs):
            seen[name] = spool_dir.exists() and any(spool_dir.iterdir())
            return real(*args, **kwargs)
        monkeypatch.setattr(sources, name, spy)
    api.convert(rdata, store, chunk_variants=100, progress=False)
    assert seen == {"write_traits": True, "mark_complete": False}  # spooled, then removed before completion


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_streamed_store_equals_r(r_files: Path, tmp_path: Path, streamed: None, case: str) -> None:
    dosage_name, pheno_name, trait_names, genotype_object, transposed = CASES[case]
    root = convert(r_files / f"{case}.RData", tmp_path / "out.zarr")
    assert root["call_dosage"].chunks == (CHUNK, N_SAMPLES)
    np.testing.assert_array_equal(root["call_dosage"][:], expected_dosage(r_files, dosage_name))
    assert list(root["sample_id"][:]) == (r_files / "samples.txt").read_text().split()
    assert list(root["variant_id"][:]) == (r_files / "markers.txt").read_text().split()
    traits = np.fromfile(r_files / f"{pheno_name}.f8", "<f8").reshape(2, N_SAMPLES).T
    np.testing.assert_array_equal(root["traits"][:], traits)  # exact, NA (R's NaN) where R has NA
    assert np.isnan(root["traits"][2, 0])
    assert list(root["trait_name"][:]) == trait_names
    meta = root.attrs[ATTRS_KEY]
    assert meta["complete"] and meta["genotype_object"] == genotype_object and meta["transposed"] is transposed
    assert len(meta["chunk_crc32"]) == -(-N_MARKERS // CHUNK) and None not in meta["chunk_crc32"]


@pytest.mark.slow
def test_streamed_and_held_paths_agree(r_files: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default threshold holds this small matrix in memory; the result is the same store."""
    held = convert(r_files / "transposed.RData", tmp_path / "held.zarr")
    monkeypatch.setattr(rdata_input, "SPOOL_MIN_VALUES", 10_000)
    streamed = convert(r_files / "transposed.RData", tmp_path / "streamed.zarr")
    np.testing.assert_array_equal(held["call_dosage"][:], streamed["call_dosage"][:])
    assert held.attrs[ATTRS_KEY]["chunk_crc32"] == streamed.attrs[ATTRS_KEY]["chunk_crc32"]


@pytest.mark.slow
def test_layout_from_names_and_transpose_flag(r_files: Path, tmp_path: Path, streamed: None) -> None:
    """Without dimnames the phenotype rows decide; --transpose forces markers × samples."""
    root = convert(r_files / "unnamed.RData", tmp_path / "unnamed.zarr")
    np.testing.assert_array_equal(root["call_dosage"][:], expected_dosage(r_files, "G"))
    assert list(root["sample_id"][:3]) == ["sample1", "sample2", "sample3"]
    forced = convert(r_files / "transposed.RData", tmp_path / "forced.zarr", transpose=True)
    np.testing.assert_array_equal(forced["call_dosage"][:], expected_dosage(r_files, "G"))


def _long_form_rdata(path: Path, values: np.ndarray, nrow: int) -> None:
    """An integer matrix whose length uses the long-vector encoding (−1, then two words)."""
    def i(*words: int) -> bytes:
        return struct.pack(f">{len(words)}i", *words)

    def named(name: bytes) -> bytes:
        return i(fmt.LISTSXP | fmt.HAS_TAG, fmt.SYMSXP, fmt.CHARSXP | fmt.ASCII_LEVEL << 12, len(name)) + name

    body = b"RDX3\nX\n" + i(3, fmt.R_VERSION_WRITTEN, fmt.MIN_READER[3], 5) + b"UTF-8"
    body += named(b"G") + i(fmt.INTSXP | fmt.HAS_ATTR, -1) + struct.pack(">II", 0, values.size)
    body += values.astype(">i4").tobytes() + named(b"dim") + i(fmt.INTSXP, 2, nrow, values.size // nrow)
    body += i(fmt.NILVALUE_SXP)
    body += named(b"y") + i(fmt.REALSXP, nrow) + np.arange(nrow, dtype=">f8").tobytes()
    path.write_bytes(body + i(fmt.NILVALUE_SXP))


def test_long_vector_encoding_streams(tmp_path: Path, streamed: None) -> None:
    rng = np.random.default_rng(3)
    values = rng.integers(0, 3, 40 * 1000).astype(np.int32)
    values[rng.random(values.size) < 0.02] = fmt.NA_INTEGER
    _long_form_rdata(tmp_path / "long.RData", values, 40)
    root = convert(tmp_path / "long.RData", tmp_path / "long.zarr")
    expected = np.where(values == fmt.NA_INTEGER, -1, values).astype(np.int8).reshape(1000, 40)
    np.testing.assert_array_equal(root["call_dosage"][:], expected)
    np.testing.assert_array_equal(root["traits"][:, 0], np.arange(40.0))
