"""PLINK .bed and VCF Zarr inputs, PLINK-style phenotype files, and bad input of every kind:
one clear line naming the file, exit code 2, and no store (or spool) left behind."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import zarr
from bed_reader import to_bed

from dask_h2 import api
from dask_h2.io.convert import store_for_run
from dask_h2.cli import main
from dask_h2.errors import InputError
from dask_h2.io import rdata_format as fmt
from dask_h2.io import rdata_input
from dask_h2.io.rdata_writer import RMatrix, write_rdata
from dask_h2.store import ATTRS_KEY


N, M = 60, 700
RNG = np.random.default_rng(2024)
DOSAGE = RNG.integers(0, 3, (M, N)).astype(np.int8)  # (markers, samples), the store's layout
DOSAGE[RNG.random((M, N)) < 0.03] = -1
IIDS = [f"i{k}" for k in range(N)]


def one_line_error(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    assert main(["--quiet", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dask-h2: error: ") and "\n" not in err, err
    return err


def assert_nothing_left(store: Path) -> None:
    assert not store.exists() and not store.with_name(store.name + ".spool").exists()


# --- PLINK .bed -------------------------------------------------------------------------------

@pytest.fixture
def bed(tmp_path: Path) -> Path:
    path = tmp_path / "geno.bed"
    values = np.where(DOSAGE.T < 0, np.nan, DOSAGE.T).astype(np.float32)
    pheno = [-9.0 if k % 7 == 0 else float(k) / 10 for k in range(N)]
    to_bed(path, values, properties={"iid": IIDS, "fid": IIDS, "sid": [f"rs{j}" for j in range(M)],
                                     "pheno": pheno})
    return path


def test_bed_converts_with_fam_phenotype(bed: Path, tmp_path: Path) -> None:
    root = zarr.open_group(api.convert(bed, tmp_path / "bed.zarr", chunk_variants=100, progress=False), mode="r")
    np.testing.assert_array_equal(root["call_dosage"][:], DOSAGE)
    assert list(root["sample_id"][:]) == IIDS and root["variant_id"][5] == "rs5"
    traits = root["traits"][:, 0]
    assert np.isnan(traits[::7]).all() and traits[1] == pytest.approx(0.1) and list(root["trait_name"][:]) == ["pheno"]
    assert None not in root.attrs[ATTRS_KEY]["chunk_crc32"]


def test_bed_with_pheno_file_and_mpheno(bed: Path, tmp_path: Path) -> None:
    table = tmp_path / "pheno.txt"
    rows = [f"{iid} {iid} {k} {'-9' if k == 3 else 2.5 * k}" for k, iid in enumerate(IIDS[:40])]
    table.write_text("FID IID height weight\n" + "\n".join(rows) + "\n")
    store = tmp_path / "p.zarr"
    assert main(["--quiet", "convert", str(bed), str(store), "--pheno", str(table), "--mpheno", "2"]) == 0
    root = zarr.open_group(store, mode="r")
    traits = root["traits"][:]
    assert traits.shape == (N, 1) and list(root["trait_name"][:]) == ["weight"]
    assert traits[5, 0] == 12.5 and np.isnan(traits[3, 0]) and np.isnan(traits[40:, 0]).all()


def test_pheno_ids_absent_from_the_genotypes(bed: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    table = tmp_path / "pheno.txt"
    table.write_text(f"{IIDS[1]} {IIDS[1]} 1.0\nghost ghost 2.0\n")
    store = tmp_path / "out.zarr"
    # ghost is ignored, as PLINK does
    assert main(["--quiet", "convert", str(bed), str(store), "--pheno", str(table)]) == 0
    traits = zarr.open_group(store, mode="r")["traits"][:, 0]
    assert traits[1] == 1.0 and np.isnan(np.delete(traits, 1)).all()
    ghosts = tmp_path / "ghosts.txt"
    ghosts.write_text("ghost ghost 2.0\n")
    err = one_line_error(capsys, ["convert", str(bed), str(tmp_path / "g.zarr"), "--pheno", str(ghosts)])
    assert "ghosts.txt" in err and "none of its IIDs match" in err
    assert_nothing_left(tmp_path / "g.zarr")
    other = tmp_path / "other.zarr"
    err = one_line_error(capsys, ["convert", str(bed), str(other), "--pheno", str(table), "--mpheno", "3"])
    assert "--mpheno 3" in err
    assert "needs --pheno" in one_line_error(capsys, ["convert", str(bed), str(other), "--mpheno", "1"])
    assert_nothing_left(other)


@pytest.mark.parametrize("missing", ["-9", "-9.0", "-9.00", "-9e0", "NA", "nan", "NaN", "."])
def test_every_spelling_of_plink_missing_is_missing(bed: Path, tmp_path: Path, missing: str) -> None:
    """-9 as any number (pandas writes -9.0 for a float column), NA, NaN and . are missing."""
    table = tmp_path / "pheno.txt"
    table.write_text("".join(f"{iid} {iid} {missing if k % 3 == 0 else k + 0.5}\n" for k, iid in enumerate(IIDS)))
    root = zarr.open_group(api.convert(bed, tmp_path / "m.zarr", pheno=table, progress=False), mode="r")
    traits = root["traits"][:, 0]
    assert np.isnan(traits[::3]).all() and np.isfinite(np.delete(traits, np.arange(0, N, 3))).all()


def test_plink_case_control_coding_makes_0_missing_in_a_1_2_trait(bed: Path, tmp_path: Path) -> None:
    """One rule, PLINK's: a trait of 1s and 2s (2 = case) has 0 missing, with or without --prevalence;
    0/1 traits and quantitative traits keep their 0s."""
    table = tmp_path / "pheno.txt"
    rows = [f"{iid} {iid} {[0, 1, 2][k % 3]} {k % 2} {[0, 1, 2, 3][k % 4]}" for k, iid in enumerate(IIDS)]
    table.write_text("FID IID disease binary count\n" + "\n".join(rows) + "\n")
    root = zarr.open_group(api.convert(bed, tmp_path / "cc.zarr", pheno=table, progress=False), mode="r")
    traits = root["traits"][:]
    assert np.isnan(traits[::3, 0]).all() and set(np.unique(traits[~np.isnan(traits[:, 0]), 0])) == {1.0, 2.0}
    assert not np.isnan(traits[:, 1:]).any() and (traits[::2, 1] == 0).all() and (traits[::4, 2] == 0).all()


@pytest.mark.parametrize("header, message", [("FID IID y y", "column name 'y' occurs 2 times"),
                                             ("FID IID a/b c", "trait name 'a/b' cannot be part of a file name"),
                                             ("FID IID .. c", "trait name '..' cannot be part of a file name")])
def test_trait_names_that_cannot_name_distinct_files(bed: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                                      header: str, message: str) -> None:
    table = tmp_path / "pheno.txt"
    table.write_text(header + "\n" + "".join(f"{iid} {iid} {k} {k % 5}\n" for k, iid in enumerate(IIDS)))
    store = tmp_path / "dup.zarr"
    err = one_line_error(capsys, ["convert", str(bed), str(store), "--pheno", str(table)])
    assert "pheno.txt" in err and message in err, err
    assert_nothing_left(store)


def test_bed_size_not_matching_bim_and_fam(bed: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = bed.read_bytes()
    bed.write_bytes(data[:-1])
    store = tmp_path / "out.zarr"
    err = one_line_error(capsys, ["convert", str(bed), str(store)])
    assert "geno.bed" in err and f"{len(data) - 1} bytes" in err and f"{N} samples" in err and f"{M} markers" in err
    bed.write_bytes(b"\x6c\x1b\x00" + data[3:])  # sample-major
    assert "not a variant-major" in one_line_error(capsys, ["convert", str(bed), str(store)])
    assert_nothing_left(store)


# --- VCF Zarr ---------------------------------------------------------------------------------

def write_vcf_zarr(path: Path, ploidy: int = 2) -> None:
    """A store laid out as bio2zarr writes it (Zarr format 2), genotypes that encode ``DOSAGE``."""
    alleles = {0: [(0, 0)], 1: [(0, 1), (1, 0), (0, 2)], 2: [(1, 1), (2, 1)], -1: [(-1, -1), (0, -1), (-1, 1)]}
    calls = np.empty((M, N, 2), np.int8)
    for d, choices in alleles.items():
        where = np.argwhere(DOSAGE == d)
        calls[where[:, 0], where[:, 1]] = np.array(choices)[RNG.integers(0, len(choices), len(where))]
    if ploidy == 3:
        calls = np.concatenate([calls, calls[..., :1]], axis=2)
    root = zarr.open_group(path, mode="w", zarr_format=2)
    root.attrs["vcf_zarr_version"] = "0.2"
    root.create_array("call_genotype", data=calls, chunks=(256, 32, ploidy))
    ids = np.array([f"rs{j}" if j % 5 else "." for j in range(M)], dtype=object)
    for name, values in (("sample_id", np.array(IIDS, dtype=object)), ("variant_id", ids),
                         ("contig_id", np.array(["chr1", "chr2"], dtype=object))):
        root.create_array(name, shape=values.shape, dtype=str)[:] = values
    root.create_array("variant_contig", data=(np.arange(M) >= M // 2).astype(np.int8))
    root.create_array("variant_position", data=np.arange(M, dtype=np.int32) * 10 + 1)


def test_vcf_zarr_dosage_counts_alternate_alleles(tmp_path: Path) -> None:
    vcz = tmp_path / "calls.vcz"
    write_vcf_zarr(vcz)
    table = tmp_path / "pheno.txt"
    table.write_text("".join(f"{iid} {iid} {k}\n" for k, iid in enumerate(IIDS)))
    store = store_for_run(vcz, tmp_path / "run", progress=False, pheno=table)
    root = zarr.open_group(store, mode="r")
    np.testing.assert_array_equal(root["call_dosage"][:], DOSAGE)
    assert list(root["sample_id"][:]) == IIDS
    assert list(root["variant_id"][:6]) == ["chr1:1", "rs1", "rs2", "rs3", "rs4", "chr1:51"]
    assert root["variant_id"][M - 5] == f"chr2:{(M - 5) * 10 + 1}"
    np.testing.assert_array_equal(root["traits"][:, 0], np.arange(N))
    assert root.attrs[ATTRS_KEY]["source_format"] == "VCF Zarr"


def test_vcf_zarr_that_is_not_diploid(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    vcz = tmp_path / "triploid.vcz"
    write_vcf_zarr(vcz, ploidy=3)
    err = one_line_error(capsys, ["convert", str(vcz), str(tmp_path / "out.zarr")])
    assert "triploid.vcz" in err and "diploid" in err
    err = one_line_error(capsys, ["convert", str(tmp_path), str(tmp_path / "out.zarr")])
    assert "not a VCF Zarr store" in err
    assert_nothing_left(tmp_path / "out.zarr")


# --- bad RData, on the streaming path ---------------------------------------------------------

@pytest.fixture
def streamed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rdata_input, "SPOOL_MIN_VALUES", 10_000)


def write_genotypes(path: Path, genotypes: np.ndarray, kind: str = "integer", compression: str = "gzip") -> None:
    """samples × markers genotypes (NaN = NA) and a phenotype column, as GWAS.RData lays them out."""
    n, m = genotypes.shape
    columns = genotypes.T.astype(np.float64)
    if kind == "integer":
        columns = np.where(np.isnan(columns), fmt.NA_INTEGER, columns).astype(np.int32)
    write_rdata(
        path,
        [
            (
                "G",
                RMatrix(
                    kind=kind,
                    nrow=n,
                    ncol=m,
                    blocks=[columns],
                    rownames=[f"s{i}" for i in range(n)],
                    colnames=[f"m{j}" for j in range(m)],
                ),
            ),
            ("y", RMatrix(kind="double", nrow=n, ncol=1, blocks=[np.ones((1, n))])),
        ],
        compression=compression,
    )


def test_truncated_and_corrupt_streams(tmp_path: Path, streamed: None, capsys: pytest.CaptureFixture) -> None:
    good = tmp_path / "good.RData"
    write_genotypes(good, np.where(RNG.random((200, 3000)) < 0.02, np.nan, RNG.integers(0, 3, (200, 3000))))
    data = good.read_bytes()
    store = tmp_path / "out.zarr"
    cut = tmp_path / "cut.RData"
    cut.write_bytes(data[:len(data) // 2])
    assert "cut.RData" in one_line_error(capsys, ["convert", str(cut), str(store)])
    raw = gzip.decompress(data)
    corrupt = tmp_path / "corrupt.RData"
    corrupt.write_bytes(raw[:len(raw) // 2])  # uncompressed, and cut inside the matrix
    assert "truncated" in one_line_error(capsys, ["convert", str(corrupt), str(store)])
    garbled = tmp_path / "garbled.RData"
    garbled.write_bytes(data[:len(data) // 2] + bytes(4096) + data[len(data) // 2 + 4096:])
    assert "garbled.RData" in one_line_error(capsys, ["convert", str(garbled), str(store)])
    text = tmp_path / "notes.RData"
    text.write_text("id\theight\nA\t1.5\n")
    assert "not an RData file" in one_line_error(capsys, ["convert", str(text), str(store)])
    assert_nothing_left(store)


@pytest.mark.parametrize("kind, bad, shown", [("integer", 3, "3"), ("integer", -2, "-2"), ("double", 1.5, "1.5"),
                                              ("double", np.inf, "inf")])
def test_genotype_values_outside_0_1_2_na(tmp_path: Path, streamed: None, capsys: pytest.CaptureFixture,
                                          kind: str, bad: float, shown: str) -> None:
    genotypes = RNG.integers(0, 3, (100, 400)).astype(np.float64)
    genotypes[37, 321] = bad
    path = tmp_path / "bad.RData"
    write_genotypes(path, genotypes, kind)
    store = tmp_path / "out.zarr"
    err = one_line_error(capsys, ["convert", str(path), str(store)])
    assert f"genotype value {shown}" in err and "sample 's37'" in err and "marker 'm321'" in err and "'G'" in err
    assert_nothing_left(store)


def test_no_matrix_of_genotype_shape(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "vectors.RData"
    write_rdata(path, [("y", RMatrix(kind="double", nrow=50, ncol=1, blocks=[np.ones((1, 50))]))])
    assert "no numeric matrix" in one_line_error(capsys, ["convert", str(path), str(tmp_path / "out.zarr")])
    assert_nothing_left(tmp_path / "out.zarr")


def test_repeated_variant_ids_are_converted_and_refused_only_where_a_file_names_them(tmp_path: Path, caplog) -> None:
    """The rule for a .bim whose IDs repeat (unnamed '.' variants): every marker is converted (said in one
    notice), the fit uses them all, and a partition file or extract/exclude list that names a repeated ID is
    refused in one line (it cannot say which marker it means); the other IDs work as ever."""
    caplog.set_level("INFO", logger="dask_h2")
    path = tmp_path / "dots.bed"
    ids = [f"rs{j}" if j % 5 else "." for j in range(M)]
    values = np.where(DOSAGE.T < 0, np.nan, DOSAGE.T).astype(np.float32)
    to_bed(path, values, properties={"iid": IIDS, "fid": IIDS, "sid": ids, "pheno": RNG.normal(size=N)})
    store = api.convert(path, tmp_path / "dots.zarr", progress=False)
    assert zarr.open_group(store, mode="r")["call_dosage"].shape == (M, N)
    assert any("1 variant ID(s) name several markers (e.g. '.', 140 markers); all are converted" in r.getMessage()
               for r in caplog.records)
    assert api.fit(store, pcs=0, progress=False).n_markers_used + \
        api.fit(store, pcs=0, progress=False).n_markers_dropped == M
    named = tmp_path / "named.txt"
    named.write_text("".join(f"rs{j} {'a' if j < 350 else 'b'}\n" for j in range(M) if j % 5))
    api.fit(store, method="rhe", partition=named, pcs=0, progress=False)  # unique IDs only: fine
    dotted = tmp_path / "dotted.txt"
    dotted.write_text(named.read_text() + ". b\n")
    (listed := tmp_path / "extract.txt").write_text("rs1\n.\n")
    for call in (lambda: api.fit(store, method="rhe", partition=dotted, pcs=0, progress=False),
                 lambda: api.fit(store, pcs=0, selection=api.Selection(extract=listed), progress=False)):
        with pytest.raises(InputError) as raised:
            call()
        assert str(raised.value).endswith("variant ID '.' names 140 markers of the store (1 such ID(s) listed); give "
                                          "the markers unique IDs (e.g. plink2 --set-all-var-ids) before converting")


@pytest.mark.parametrize("text, expected", [
    ("\ufeffFID IID y\n" + "".join(f"{i} {i} {k}\n" for k, i in enumerate(IIDS)), None),  # a BOM is ignored
    ("#FID IID y\n" + "".join(f"{i} {i} {k}\n" for k, i in enumerate(IIDS)), None),  # plink2's header
    ("IID y\n" + "".join(f"{i} {k}\n" for k, i in enumerate(IIDS)), "header 'IID y'...: expected FID IID and then"),
    ("FID,IID,y\n" + "".join(f"{i},{i},{k}\n" for k, i in enumerate(IIDS)),
     "line 1 has 1 column(s) (its values are separated by commas); expected FID IID and then"),
    ("sample id y\n" + "".join(f"{i} {i} {k}\n" for k, i in enumerate(IIDS)),
     "non-numeric value 'y' in column 'pheno1', line 1; a header line must begin FID IID (expected FID IID and then"),
])
def test_phenotype_file_slips_are_read_or_told_the_layout(bed: Path, tmp_path: Path, capsys, text, expected) -> None:
    pheno = tmp_path / "pheno.txt"
    pheno.write_text(text, encoding="utf-8")
    out = tmp_path / "p.zarr"
    if expected is None:
        root = zarr.open_group(api.convert(bed, out, pheno=pheno, progress=False), mode="r")
        assert list(root["trait_name"][:]) == ["y"] and root["traits"][3, 0] == 3.0
        return
    err = one_line_error(capsys, ["convert", str(bed), str(out), "--pheno", str(pheno)])
    assert err.startswith(f"dask-h2: error: {pheno}: ") and expected in err and "separated by spaces or tabs" in err
    assert_nothing_left(out)
