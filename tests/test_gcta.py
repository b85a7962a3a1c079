"""GCTA interoperability: the binary GRM format, fitting from a GCTA GRM, and the .hsq layout."""
from __future__ import annotations

import json
import shutil
import subprocess

import dask.array as da
import numpy as np
import pytest
import zarr
from bed_reader import open_bed

from conftest import shared_data

from dask_h2.io.convert import simulate_to
from dask_h2 import api
from dask_h2.cli import main
from dask_h2.errors import InputError
from dask_h2.results import TraitFit
from dask_h2.io.gcta import pack_lower, paths, read_grm, unpack_lower, write_grm
from dask_h2.kinship.grm import kinship
from dask_h2.io.reports import hsq_text
from dask_h2.io.simulate import SimulationDesign


def test_lower_triangle_is_row_major_with_the_diagonal():
    K = np.array([[1.0, 2.0, 4.0], [2.0, 3.0, 5.0], [4.0, 5.0, 6.0]])
    np.testing.assert_array_equal(pack_lower(K), [1, 2, 3, 4, 5, 6])
    assert pack_lower(K).dtype == np.dtype("<f4")
    np.testing.assert_array_equal(unpack_lower(pack_lower(K), 3), K)


def test_files_hold_exactly_gcta_bytes(tmp_path):
    K = np.array([[1.25, -0.5], [-0.5, 0.75]])
    written = write_grm(tmp_path / "g", K, iid=np.array(["a", "b"], dtype=object), n_markers=1234)
    assert written == list(paths(tmp_path / "g"))
    assert (tmp_path / "g.grm.bin").read_bytes() == np.array([1.25, -0.5, 0.75], dtype="<f4").tobytes()
    assert (tmp_path / "g.grm.N.bin").read_bytes() == np.array([1234] * 3, dtype="<f4").tobytes()
    assert (tmp_path / "g.grm.id").read_text() == "a\ta\nb\tb\n"


def test_write_then_read_round_trips_to_float32(tmp_path):
    rng = np.random.default_rng(0)
    A = rng.normal(size=(40, 40))
    K = A @ A.T / 40
    iid = np.array([f"i{k}" for k in range(40)], dtype=object)
    write_grm(tmp_path / "g", K, iid=iid, n_markers=5000, fid=np.array([f"f{k}" for k in range(40)], dtype=object))
    grm = read_grm(tmp_path / "g")
    np.testing.assert_allclose(grm.kinship, K, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(grm.kinship, grm.kinship.T)
    assert (grm.n_markers == 5000).all() and list(grm.iid) == list(iid) and grm.fid[3] == "f3"


def test_truncated_grm_is_refused(tmp_path):
    write_grm(tmp_path / "g", np.eye(5), iid=np.array(list("abcde"), dtype=object), n_markers=10)
    data = (tmp_path / "g.grm.bin").read_bytes()
    (tmp_path / "g.grm.bin").write_bytes(data[:-4])
    with pytest.raises(InputError, match=r"g\.grm\.bin: 56 bytes, expected 60"):
        read_grm(tmp_path / "g")


@pytest.mark.parametrize("plink", ["plink1.9", "plink2"])
def test_reads_plinks_make_grm_bin_and_it_equals_our_k(tmp_path, plink):
    """PLINK writes GCTA's format; on complete genotypes its K is WWᵀ/M with sqrt(2p(1 − p)) scaling."""
    binary = shutil.which(plink)
    if binary is None:
        pytest.skip(f"{plink} is not installed (Debian: apt-get install plink1.9 / plink2)")
    folder = shared_data("fastlmm_synth")
    subprocess.run([binary, "--bfile", str(folder / "fastlmmTest"), "--make-grm-bin", "--out", str(tmp_path / "p")],
                   check=True, capture_output=True)
    theirs = read_grm(tmp_path / "p")
    bed = open_bed(folder / "fastlmmTest.bed")
    dosage = bed.read(dtype="int8").T
    ours = kinship(da.from_array(dosage, chunks=(500, -1)), scale="hwe").matrix
    assert list(theirs.iid) == list(bed.iid) and (theirs.n_markers == 2000).all()
    np.testing.assert_allclose(theirs.kinship, ours, rtol=0, atol=1e-6)  # PLINK rounds to float32


def test_hsq_layout_is_gctas():
    fit = TraitFit(name="y", method="REML", h2=0.397226, h2_se=0.1647, h2_ci_low=0.1, h2_ci_high=0.7,
                   sigma_g2=0.38935, sigma_g2_se=0.161843, sigma_e2=0.590813, sigma_e2_se=0.157434, vp=0.980163,
                   vp_se=0.015017, delta=1.5, logL=-945.0654, logL0=-974.4801, lrt=58.8294, pval=8.6e-15, n=2000,
                   boundary=False)
    assert hsq_text(fit) == ("Source\tVariance\tSE\nV(G)\t0.389350\t0.161843\nV(e)\t0.590813\t0.157434\n"
                             "Vp\t0.980163\t0.015017\nV(G)/Vp\t0.397226\t0.164700\nlogL\t-945.065\n"
                             "logL0\t-974.480\nLRT\t58.829\ndf\t1\nPval\t8.6000e-15\nn\t2000\n")


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gcta")
    store = simulate_to(
        folder / "sim.zarr", SimulationDesign(n_samples=300, n_markers=1500, h2=(0.6, 0.2), seed=4), progress=False
    )
    root = zarr.open_group(store, mode="r")
    traits, ids = root["traits"][:], root["sample_id"][:]
    pheno = folder / "pheno.txt"
    pheno.write_text("FID IID a b\n" + "".join(f"{i} {i} {t[0]!r} {'NA' if k % 7 == 0 else repr(t[1])}\n"
                                                 for k, (i, t) in enumerate(zip(ids, traits.tolist()))))
    return folder, store, pheno


def test_fit_from_exported_gcta_grm_equals_the_store_fit(simulated, capsys):
    folder, store, pheno = simulated
    assert main(["--quiet", "grm", str(store), "--out-gcta", str(folder / "g")]) == 0
    assert "g.grm.bin" in capsys.readouterr().out
    assert main(["--quiet", "fit", "--grm", str(folder / "g"), "--pheno", str(pheno), "--out", str(folder / "gf")]) == 0
    from_gcta = json.loads((folder / "gf.json").read_text())
    assert from_gcta["n_markers_used"] == 1500 and from_gcta["scale"] == "gcta-grm"
    a, b = from_gcta["traits"]
    assert (a["name"], a["n"]) == ("a", 300) and (b["name"], b["n"]) == ("b", 300 - 43)
    store_fit = api.fit(store, method="REML", progress=False).traits[0]
    assert a["h2"] == pytest.approx(store_fit.h2, abs=1e-5)  # K went through float32
    assert a["h2_se"] == pytest.approx(store_fit.h2_se, abs=1e-5)
    assert (folder / "gf.a.hsq").read_text().startswith("Source\tVariance\tSE\nV(G)\t")


def test_a_gcta_grm_without_its_marker_counts_says_they_are_unknown(simulated, tmp_path, capsys):
    folder, store, pheno = simulated
    assert main(["--quiet", "grm", str(store), "--out-gcta", str(tmp_path / "g")]) == 0
    (tmp_path / "g.grm.N.bin").unlink()
    assert main(["fit", "--grm", str(tmp_path / "g"), "--pheno", str(pheno), "--out", str(tmp_path / "f")]) == 0
    assert "300 samples, markers used unknown (a GRM without .grm.N.bin), scale=gcta-grm" in capsys.readouterr().out
    assert json.loads((tmp_path / "f.json").read_text())["n_markers_used"] is None


def test_fit_from_a_non_psd_gcta_grm_warns_in_one_line(simulated, tmp_path, capsys):
    folder, store, pheno = simulated
    assert main(["--quiet", "grm", str(store), "--out-gcta", str(tmp_path / "g")]) == 0
    grm = read_grm(tmp_path / "g")
    write_grm(
        tmp_path / "bent", grm.kinship - 0.2 * np.eye(len(grm.iid)), iid=grm.iid, n_markers=grm.n_markers, fid=grm.fid
    )
    assert main(["--quiet", "fit", "--grm", str(tmp_path / "bent"), "--pheno", str(pheno),
                 "--out", str(tmp_path / "f")]) == 0
    lines = capsys.readouterr().err.strip().splitlines()  # one per eigendecomposition: all samples, trait b's
    assert len(lines) == 2
    assert all(line.startswith("dask-h2: warning: the GRM is not positive semidefinite: 1 eigenvalue(s) below 0")
               for line in lines)
    assert (tmp_path / "f.json").exists()


def test_fit_needs_exactly_one_of_store_and_grm(simulated, capsys):
    folder, store, pheno = simulated
    for argv in (["fit", "--out", str(folder / "x")],
                 ["fit", "--grm", str(folder / "g"), "--out", str(folder / "x")],
                 ["fit", str(store), "--grm", str(folder / "g"), "--pheno", str(pheno), "--out", str(folder / "x")]):
        assert main(["--quiet", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("dask-h2: error: give") and "\n" not in err
