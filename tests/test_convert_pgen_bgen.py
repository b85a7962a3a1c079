"""PLINK 2 .pgen and BGEN inputs against plink2 itself: the same genotypes as .bed, .pgen and
BGEN give identical stores and estimates; dosages become the calls plink2 makes at the same
--hard-call-threshold; an interrupted conversion resumes; bad input is one line naming the file."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr
from bed_reader import open_bed, to_bed

from dask_h2 import api
from dask_h2.cli import main
from dask_h2.io import hard_calls as hard_call_module
from dask_h2.io import sources
from dask_h2.io.simulate import SimulationDesign, simulate
from dask_h2.store import ATTRS_KEY, is_complete

PLINK2 = shutil.which("plink2")
pytestmark = pytest.mark.skipif(PLINK2 is None, reason="plink2 is not installed (Debian: apt-get install plink2)")
THRESHOLDS = [None, 0.05, 0.2]  # None: plink2's default


def plink2(folder: Path, *arguments: str) -> None:
    result = subprocess.run([PLINK2, "--threads", "1", *arguments], cwd=folder, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:]


def plink2_calls(folder: Path, out: str, *arguments: str, threshold: float | None) -> np.ndarray:
    """plink2's calls (markers, samples), −1 missing, of ``arguments --make-bed`` counting .bim's A1."""
    extra = [] if threshold is None else ["--hard-call-threshold", str(threshold)]
    plink2(folder, *arguments, *extra, "--make-bed", "--out", out)
    values = open_bed(folder / f"{out}.bed", count_A1=True).read(dtype="int8").T
    values[values < 0] = -1
    return values


def converted(source: Path, store: Path, **options) -> zarr.Group:
    return zarr.open_group(api.convert(source, store, progress=False, **options), mode="r")


@pytest.fixture(scope="module")
def same_genotypes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated .bed (with missing calls) and plink2's .pgen and 8-bit layout-2 BGEN (ref-first) of it."""
    folder = tmp_path_factory.mktemp("pgen_bgen")
    source = simulate(SimulationDesign(n_samples=240, n_markers=1500, h2=(0.6,), seed=5))
    dosage = source.read_block(0, source.n_variants).T.astype(np.float32)
    dosage[dosage < 0] = np.nan
    iid = list(source.sample_id)
    traits, _ = source.phenotypes()
    fam_trait = np.where(np.arange(len(iid)) % 9 == 0, -9, traits[:, 0])
    to_bed(folder / "sim.bed", dosage, properties={"iid": iid, "fid": iid, "sid": list(source.variant_id),
                                                   "pheno": fam_trait})
    (folder / "pheno.txt").write_text("".join(f"{i} {i} {float(v)!r}\n" for i, v in zip(iid, traits[:, 0])))
    plink2(folder, "--bfile", "sim", "--make-pgen", "--out", "sim")
    plink2(folder, "--bfile", "sim", "--export", "bgen-1.2", "bits=8", "ref-first", "--out", "sim")
    return folder


def test_bed_pgen_and_bgen_give_identical_stores_and_estimates(same_genotypes: Path, tmp_path: Path) -> None:
    folder = same_genotypes
    roots = {suffix: converted(folder / f"sim.{suffix}", tmp_path / f"{suffix}.zarr", pheno=folder / "pheno.txt",
                               chunk_variants=400)
             for suffix in ("bed", "pgen", "bgen")}
    calls = roots["bed"]["call_dosage"][:]
    assert (calls == -1).any() and set(np.unique(calls)) == {-1, 0, 1, 2}
    for suffix in ("pgen", "bgen"):
        np.testing.assert_array_equal(roots[suffix]["call_dosage"][:], calls)
        np.testing.assert_array_equal(roots[suffix]["sample_id"][:], roots["bed"]["sample_id"][:])
        np.testing.assert_array_equal(roots[suffix]["variant_id"][:], roots["bed"]["variant_id"][:])
        np.testing.assert_array_equal(roots[suffix]["traits"][:], roots["bed"]["traits"][:])
    assert roots["bgen"].attrs[ATTRS_KEY]["hard_call_threshold"] == 0.1
    assert roots["pgen"].attrs[ATTRS_KEY]["hard_call_threshold"] is None
    fits = {suffix: api.fit(tmp_path / f"{suffix}.zarr", pcs=2, progress=False).traits[0]
            for suffix in ("bed", "pgen", "bgen")}
    for suffix in ("pgen", "bgen"):
        assert (fits[suffix].h2, fits[suffix].h2_se, fits[suffix].sigma_g2, fits[suffix].logL) == \
            (fits["bed"].h2, fits["bed"].h2_se, fits["bed"].sigma_g2, fits["bed"].logL)
    assert 0.2 < fits["bed"].h2 < 1


def test_psam_phenotypes_are_the_fams(same_genotypes: Path, tmp_path: Path) -> None:
    """Without --pheno, a .pgen's traits are its .psam's phenotype columns, as a .bed's are its .fam's
    (plink2 prints them to 6 significant digits)."""
    bed = converted(same_genotypes / "sim.bed", tmp_path / "bed.zarr")
    pgen = converted(same_genotypes / "sim.pgen", tmp_path / "pgen.zarr")
    assert list(pgen["trait_name"][:]) == ["PHENO1"] and np.isnan(pgen["traits"][::9, 0]).all()
    printed = np.array([[float(f"{value:.6g}")] for value in bed["traits"][:, 0]])
    np.testing.assert_array_equal(pgen["traits"][:], printed)


@pytest.fixture(scope="module")
def dosages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """plink2 dummy dosage data (unphased, and phased) as .pgen and as BGEN: 8-bit zlib v1.2, 16-bit zstd v1.3."""
    folder = tmp_path_factory.mktemp("dosages")
    plink2(folder, "--dummy", "150", "300", "0.02", "dosage-freq=0.6", "--seed", "3", "--make-pgen", "--out", "dos")
    plink2(folder, "--dummy", "150", "300", "0.02", "dosage-freq=0.6", "phase-freq=0.7", "--seed", "4",
           "--make-pgen", "--out", "phased")
    plink2(folder, "--pfile", "dos", "--export", "bgen-1.2", "bits=8", "ref-first", "--out", "dos8")
    plink2(folder, "--pfile", "phased", "--export", "bgen-1.3", "bits=16", "ref-first", "--out", "phased16")
    return folder


@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_dosage_pgen_gives_plink2_calls(dosages: Path, tmp_path: Path, threshold: float | None) -> None:
    expected = plink2_calls(tmp_path, "plink", "--pfile", str(dosages / "dos"), threshold=threshold)
    root = converted(dosages / "dos.pgen", tmp_path / "dos.zarr", hard_call_threshold=threshold, chunk_variants=64)
    calls = root["call_dosage"][:]
    assert 0.05 < np.mean(calls == -1) < 0.95  # the threshold is exercised
    np.testing.assert_array_equal(calls, expected)
    assert root.attrs[ATTRS_KEY]["hard_call_threshold"] == threshold


@pytest.mark.parametrize("threshold", THRESHOLDS)
@pytest.mark.parametrize("name", ["dos8", "phased16"])
def test_dosage_bgen_gives_plink2_calls(dosages: Path, tmp_path: Path, name: str, threshold: float | None) -> None:
    bgen = dosages / f"{name}.bgen"
    expected = plink2_calls(tmp_path, "plink", "--bgen", str(bgen), "ref-first", "--sample",
                            str(bgen.with_suffix(".sample")), threshold=threshold)
    root = converted(bgen, tmp_path / "dos.zarr", hard_call_threshold=threshold, chunk_variants=64)
    np.testing.assert_array_equal(root["call_dosage"][:], expected)
    assert root.attrs[ATTRS_KEY]["hard_call_rule"] == "plink2 --hard-call-threshold"
    assert root.attrs[ATTRS_KEY]["hard_call_threshold"] == (0.1 if threshold is None else threshold)


@pytest.mark.parametrize("threshold", [None, 0.2])
def test_bgen_exact_rereading_gives_plink2_calls(dosages: Path, tmp_path: Path, threshold: float | None,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Every variant flagged as near a step of the rule, so every one is read again by cbgen in float64."""
    monkeypatch.setattr(hard_call_module, "AMBIGUOUS", 1e6)
    for name in ("dos8", "phased16"):
        bgen = dosages / f"{name}.bgen"
        expected = plink2_calls(tmp_path, name, "--bgen", str(bgen), "ref-first", "--sample",
                                str(bgen.with_suffix(".sample")), threshold=threshold)
        root = converted(bgen, tmp_path / f"{name}.zarr", hard_call_threshold=threshold)
        np.testing.assert_array_equal(root["call_dosage"][:], expected)


@pytest.mark.parametrize("suffix", ["pgen", "bgen"])
def test_interrupted_conversion_resumes(same_genotypes: Path, tmp_path: Path, suffix: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    source, store = same_genotypes / f"sim.{suffix}", tmp_path / "resumed.zarr"
    write = sources._write_store
    writes = []

    def interrupted(genotypes, *args):
        read_block = genotypes.read_block

        def read_then_stop(start, stop):
            if len(writes) == 3:
                raise KeyboardInterrupt
            writes.append(start)
            return read_block(start, stop)

        genotypes.read_block = read_then_stop
        return write(genotypes, *args)

    monkeypatch.setattr(sources, "_write_store", interrupted)
    with pytest.raises(KeyboardInterrupt):
        api.convert(source, store, chunk_variants=200, progress=False)
    monkeypatch.undo()
    recorded = zarr.open_group(store, mode="r").attrs[ATTRS_KEY]["chunk_crc32"]
    assert not is_complete(store) and 0 < sum(c is not None for c in recorded) < len(recorded)
    np.testing.assert_array_equal(converted(source, store, chunk_variants=200)["call_dosage"][:],
                                  converted(source, tmp_path / "whole.zarr", chunk_variants=200)["call_dosage"][:])
    assert is_complete(store)


def one_line_error(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    assert main(["--quiet", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dask-h2: error: ") and "\n" not in err, err
    return err


def _copy(folder: Path, stem: str, into: Path, suffixes: tuple[str, ...]) -> Path:
    for suffix in suffixes:
        shutil.copy(folder / f"{stem}{suffix}", into / f"in{suffix}")
    return into / f"in{suffixes[0]}"


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])


def _drop_last_line(path: Path) -> None:
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))


def _multiallelic(path: Path) -> None:
    lines = path.read_text().splitlines(keepends=True)
    fields = lines[5].rstrip("\n").split("\t")
    fields[4] += ",T"
    lines[5] = "\t".join(fields) + "\n"
    path.write_text("".join(lines))


PGEN_FILES = (".pgen", ".pvar", ".psam")
BGEN_FILES = (".bgen", ".sample")


@pytest.mark.parametrize("files, damage, expected", [
    (PGEN_FILES, lambda p: p.with_suffix(".pvar").unlink(), "in.pvar: no such file"),
    (PGEN_FILES, lambda p: p.with_suffix(".psam").unlink(), "in.psam: no such file"),
    (PGEN_FILES, lambda p: _drop_last_line(p.with_suffix(".psam")), "in.psam: 239 samples, but in.pgen holds 240"),
    (PGEN_FILES, lambda p: _drop_last_line(p.with_suffix(".pvar")), "in.pvar: 1499 variants, but the .pgen holds 1500"),
    (PGEN_FILES, lambda p: _multiallelic(p.with_suffix(".pvar")), "has 3 alleles; dask-h2 reads biallelic"),
    (PGEN_FILES, _truncate, "in.pgen: variants"),
    (BGEN_FILES, _truncate, "in.bgen: unreadable BGEN file"),
    (BGEN_FILES, lambda p: _drop_last_line(p.with_suffix(".sample")), "in.sample: 239 samples, but in.bgen holds 240"),
], ids=["no-pvar", "no-psam", "short-psam", "short-pvar", "multiallelic", "truncated-pgen", "truncated-bgen",
        "short-sample"])
def test_bad_input_is_one_line_and_leaves_nothing(same_genotypes: Path, tmp_path: Path, capsys, files, damage,
                                                  expected) -> None:
    source = _copy(same_genotypes, "sim", tmp_path, files)
    damage(source)
    store = tmp_path / "out.zarr"
    assert expected in one_line_error(capsys, ["convert", str(source), str(store), "--chunk", "300"])
    assert not store.exists() and not store.with_name("out.zarr.spool").exists()


def test_bgen_v11_is_refused(same_genotypes: Path, tmp_path: Path, capsys) -> None:
    plink2(tmp_path, "--bfile", str(same_genotypes / "sim"), "--export", "bgen-1.1", "ref-first", "--out", "old")
    err = one_line_error(capsys, ["convert", str(tmp_path / "old.bgen"), str(tmp_path / "out.zarr")])
    assert "old.bgen: BGEN v1.1 (layout 1) is not read" in err


def test_threshold_is_checked_and_only_for_dosage_inputs(same_genotypes: Path, tmp_path: Path, capsys) -> None:
    bgen, bed = str(same_genotypes / "sim.bgen"), str(same_genotypes / "sim.bed")
    err = one_line_error(capsys, ["convert", bgen, str(tmp_path / "a.zarr"), "--hard-call-threshold", "0.5"])
    assert "--hard-call-threshold" in err and "[0, 0.5)" in err
    err = one_line_error(capsys, ["convert", bed, str(tmp_path / "b.zarr"), "--hard-call-threshold", "0.2"])
    assert "--hard-call-threshold is for .pgen and BGEN inputs" in err
    assert not (tmp_path / "b.zarr").exists()


def test_haploid_samples_are_refused(tmp_path: Path, capsys) -> None:
    """plink2 writes male chrX calls to BGEN with ploidy 1."""
    iid = [f"i{k}" for k in range(20)]
    calls = np.random.default_rng(1).integers(0, 3, (20, 30)).astype(np.float32)
    to_bed(tmp_path / "x.bed", calls, properties={"iid": iid, "fid": iid, "sex": [1] * 10 + [2] * 10,
                                                  "chromosome": ["X"] * 30})
    plink2(tmp_path, "--bfile", "x", "--export", "bgen-1.2", "bits=8", "ref-first", "--out", "x")
    err = one_line_error(capsys, ["convert", str(tmp_path / "x.bgen"), str(tmp_path / "x.zarr")])
    assert "x.bgen: variant sid1 has samples of ploidy 1; dask-h2 reads diploid calls only" in err
    assert not (tmp_path / "x.zarr").exists()


@pytest.mark.parametrize("suffix, readers_own", [("pgen", "[]"), ("bed", "['scipy']")])  # bed-reader loads SciPy
def test_conversion_loads_no_estimation_library(same_genotypes: Path, tmp_path: Path, suffix: str,
                                                readers_own: str) -> None:
    """The command's start was most of a conversion's time: converting a .pgen or .bed loads its reader,
    Zarr and NumPy, and none of what the estimation paths need (Dask, distributed, SciPy, numba)."""
    code = ("import sys; from dask_h2.command import main; "
            "code = main(['--quiet', 'convert', sys.argv[1], sys.argv[2]]); "
            "print(code, sorted({'dask', 'distributed', 'scipy', 'numba'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code, str(same_genotypes / f"sim.{suffix}"),
                             str(tmp_path / "out.zarr")], capture_output=True, text=True)
    assert result.stdout.splitlines()[-1] == f"0 {readers_own}", result.stderr[-2000:]
    assert is_complete(tmp_path / "out.zarr")
