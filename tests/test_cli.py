"""The dask-h2 command line end to end, and its handling of bad input."""
from __future__ import annotations

import gzip
import json
import struct
import subprocess
import sys

import numpy as np
import pytest
import zarr

from dask_h2.io.convert import simulate_to
from dask_h2 import api
from dask_h2.cli import main
from dask_h2.io import rdata_format as f
from dask_h2.interrupts import interrupt_behind
from dask_h2.io.rdata_writer import RMatrix, write_rdata
from dask_h2.io.simulate import SimulationDesign
from dask_h2.store import is_complete

SMALL = ["--samples", "240", "--markers", "1500"]


def test_demo_runs_and_writes_gcta_outputs(tmp_path, capsys):
    assert main(["--quiet", "demo", "--out-dir", str(tmp_path), *SMALL]) == 0
    out = capsys.readouterr().out
    assert "true h2" in out and out.count("REML") == 4
    report = json.loads((tmp_path / "demo.json").read_text())
    (noise,) = [line for line in out.splitlines() if line.startswith("distance from the true h2, in SEs: ")]
    expected = [abs(t["h2"] - h) / t["h2_se"] for t, h in zip(report["traits"], (0.5, 0.3, 0.1, 0.0))]
    assert noise.split(": ")[1].split(";")[0] == ", ".join(f"{d:.1f}" for d in expected)
    assert "1 in 20 beyond 2 SE by sampling noise alone" in noise
    assert report["n_samples"] == 240 and report["pcs"] == 10 and report["scale"] == "hwe"
    assert report["n_markers_used"] + report["n_markers_dropped"] == 1500
    fields = {"name", "method", "h2", "h2_se", "sigma_g2", "sigma_e2", "delta", "logL", "logL0", "lrt", "pval", "n",
              "boundary", "beta"}
    for trait in report["traits"]:
        assert fields <= set(trait) and 0.0 <= trait["h2"] <= 1.0 and len(trait["beta"]) == 11
    hsq = (tmp_path / "demo.trait1.hsq").read_text().splitlines()
    assert [line.split("\t")[0] for line in hsq] == [
        "Source", "V(G)", "V(e)", "Vp", "V(G)/Vp", "logL", "logL0", "LRT", "df", "Pval", "n"]
    assert float(hsq[4].split("\t")[1]) == pytest.approx(report["traits"][0]["h2"], abs=1e-6)


def test_installed_entry_point_prints_help():
    result = subprocess.run(["dask-h2", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for command in ("simulate", "convert", "grm", "fit", "run", "demo"):
        assert command in result.stdout


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sim")
    design = SimulationDesign(n_samples=200, n_markers=900, h2=(0.6, 0.0), seed=5)
    rdata, store = folder / "sim.RData", folder / "sim.zarr"
    simulate_to(rdata, design, progress=False)
    simulate_to(store, design, progress=False)
    return rdata, store


def test_rdata_and_zarr_simulations_hold_the_same_data(simulated, tmp_path):
    rdata, store = simulated
    converted = tmp_path / "converted.zarr"
    assert main(["--quiet", "convert", str(rdata), str(converted), "--chunk", "128"]) == 0
    a, b = zarr.open_group(store, mode="r"), zarr.open_group(converted, mode="r")
    np.testing.assert_array_equal(a["call_dosage"][:], b["call_dosage"][:])
    np.testing.assert_array_equal(a["traits"][:], b["traits"][:])
    assert list(a["sample_id"][:]) == list(b["sample_id"][:]) and list(a["trait_name"][:]) == ["trait1", "trait2"]
    assert (a["call_dosage"][:] == -1).any() and b["call_dosage"].chunks == (128, 200)


def test_run_on_rdata_equals_grm_then_fit_on_the_store(simulated, tmp_path):
    rdata, store = simulated
    assert main(["--quiet", "run", str(rdata), str(tmp_path / "run"), "--method", "ml"]) == 0
    assert main(["--quiet", "grm", str(store)]) == 0
    assert main(["--quiet", "fit", str(store), "--out", str(tmp_path / "fit"), "--method", "ml"]) == 0
    run = json.loads((tmp_path / "run.json").read_text())
    fit = json.loads((tmp_path / "fit.json").read_text())
    for a, b in zip(run["traits"], fit["traits"]):
        assert a["h2"] == pytest.approx(b["h2"], abs=1e-9) and a["method"] == "ML" and a["n_null_removed"] == 1
    assert is_complete(tmp_path / "run.zarr")
    stamp = (tmp_path / "run.zarr" / "zarr.json").stat().st_mtime_ns
    assert main(["--quiet", "run", str(rdata), str(tmp_path / "run")]) == 0  # reuses the converted store
    assert (tmp_path / "run.zarr" / "zarr.json").stat().st_mtime_ns == stamp


def test_traits_with_missing_values_are_fitted_on_their_complete_cases(tmp_path):
    store = simulate_to(
        tmp_path / "missing.zarr", SimulationDesign(n_samples=200, n_markers=900, h2=(0.6, 0.0), seed=5), progress=False
    )
    root = zarr.open_group(store, mode="r+")
    traits = root["traits"][:]
    traits[::10, 0] = np.nan
    root["traits"][:] = traits
    report = api.fit(store, method="REML", progress=False)
    assert report.traits[0].n == 180 and report.traits[1].n == 200


def _one_line_error(capsys, argv) -> str:
    assert main(["--quiet", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dask-h2: error: ") and "\n" not in err
    return err


def test_missing_input_file(tmp_path, capsys):
    err = _one_line_error(capsys, ["convert", str(tmp_path / "absent.RData"), str(tmp_path / "out.zarr")])
    assert "absent.RData" in err and not (tmp_path / "out.zarr").exists()


def _rdata_with_only_strings(path):
    def i(value):
        return struct.pack(">i", value)

    body = b"RDX3\nX\n" + i(3) + i(f.R_VERSION_WRITTEN) + i(f.MIN_READER[3]) + i(5) + b"UTF-8"
    body += i(f.LISTSXP | f.HAS_TAG) + i(f.SYMSXP) + i(f.CHARSXP) + i(5) + b"notes"
    body += i(f.STRSXP) + i(1) + i(f.CHARSXP) + i(2) + b"hi" + i(f.NILVALUE_SXP)
    path.write_bytes(gzip.compress(body))


def test_rdata_without_a_numeric_matrix(tmp_path, capsys):
    path = tmp_path / "strings.RData"
    _rdata_with_only_strings(path)
    err = _one_line_error(capsys, ["convert", str(path), str(tmp_path / "out.zarr")])
    assert "strings.RData" in err and "no numeric matrix" in err and not (tmp_path / "out.zarr").exists()


def _write_matrices(path, genotypes: np.ndarray, phenotypes: np.ndarray):
    write_rdata(path, [("G", RMatrix(kind="integer", nrow=genotypes.shape[0], ncol=genotypes.shape[1],
                                       blocks=[genotypes.T.astype(np.int32)])),
                       ("Y", RMatrix(kind="double", nrow=phenotypes.shape[0], ncol=phenotypes.shape[1],
                                       blocks=[phenotypes.T]))])


def test_genotype_value_outside_0_1_2(tmp_path, capsys):
    genotypes = np.random.default_rng(0).integers(0, 3, size=(30, 500))
    genotypes[7, 450] = 3
    path = tmp_path / "bad.RData"
    _write_matrices(path, genotypes, np.zeros((30, 1)))
    out = tmp_path / "out.zarr"
    err = _one_line_error(capsys, ["convert", str(path), str(out), "--chunk", "100"])
    assert "bad.RData" in err and "'G'" in err and "3" in err and "sample8" in err and "variant451" in err
    assert not is_complete(out) and not out.exists()


def test_phenotype_rows_do_not_match_genotype_samples(tmp_path, capsys):
    path = tmp_path / "mismatch.RData"
    _write_matrices(path, np.zeros((30, 500), dtype=int), np.zeros((29, 2)))
    err = _one_line_error(capsys, ["run", str(path), str(tmp_path / "out")])
    assert "mismatch.RData" in err and "phenotype" in err and not (tmp_path / "out.zarr").exists()


def test_incomplete_store_is_refused_and_convert_starts_over(simulated, tmp_path, capsys):
    rdata, _ = simulated
    store = tmp_path / "half.zarr"
    api.convert(rdata, store, progress=False)
    root = zarr.open_group(store, mode="r+")
    root.attrs["dask_h2"] = {**root.attrs["dask_h2"], "complete": False}  # as if interrupted
    err = _one_line_error(capsys, ["grm", str(store)])
    assert "incomplete" in err and "half.zarr" in err
    assert main(["--quiet", "convert", str(rdata), str(store)]) == 0 and is_complete(store)
    err = _one_line_error(capsys, ["convert", str(rdata), str(store)])
    assert "already exists" in err


@pytest.mark.slow
def test_bad_method_is_a_usage_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "dask_h2.cli", "fit", str(tmp_path), "--out", "x", "--method", "gls"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_an_interrupt_cutting_short_an_extension_import_is_one_line():
    """SIGTERM inside a C extension's initialization surfaces as ImportError("initialization failed") caused by
    the interrupt (seen once in scipy.optimize's HiGHS module): the command says one line and exits 143."""
    script = ("import sys\n"
              "from dask_h2.interrupts import Interrupted\n"
              "class Cut:\n"
              "    def find_spec(self, name, path=None, target=None):\n"
              "        if name == 'dask_h2.cli':\n"
              "            raise ImportError('initialization failed') from Interrupted()\n"
              "sys.meta_path.insert(0, Cut())\n"
              "from dask_h2.command import main\n"
              "sys.exit(main(['--help']))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 143 and result.stderr == "dask-h2: interrupted\n", result.stderr


def test_interrupt_behind_finds_only_interrupts():
    error = ImportError("no module named matplotlib")
    assert interrupt_behind(error) is None
    wrapped = SystemError("callback failed")
    wrapped.__cause__ = KeyboardInterrupt()
    assert interrupt_behind(wrapped) is wrapped.__cause__
