"""Several GRMs from a store (grm --partition, fit --mgrm) and from GCTA files (fit --mgrm-gcta)."""
from __future__ import annotations

import json

import dask.array as da
import numpy as np
import pytest
import zarr

from dask_h2.io.convert import simulate_to
from dask_h2.kinship.groups import partitioned_grm_of_store
from dask_h2.cli import main
from dask_h2.io.gcta import read_grm, write_grm
from dask_h2.kinship.grm import partitioned_kinship
from dask_h2.greml.components import fit_components
from dask_h2.kinship.partition import parse_partition
from dask_h2.io.simulate import SimulationDesign

PARTITION = "maf:0.0,0.2,0.5"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mgrm")
    path = simulate_to(
        folder / "s.zarr", SimulationDesign(n_samples=300, n_markers=2000, h2=(0.5, 0.2), seed=21), progress=False
    )
    return folder, path


def test_store_parts_and_fit_equal_the_numerics_on_arrays(store):
    folder, path = store
    assert main(["--quiet", "grm", str(path), "--partition", PARTITION, "--out-gcta", str(folder / "parts")]) == 0
    root = zarr.open_group(path, mode="r")
    variant_id = root["variant_id"][:]
    expected = partitioned_kinship(da.from_zarr(root["call_dosage"]), parse_partition(PARTITION, variant_id))
    stored = partitioned_grm_of_store(path, progress=False)  # the recorded partition, reused
    np.testing.assert_array_equal(stored.kinships[:], expected.matrices)
    np.testing.assert_array_equal(stored.part_markers, expected.part_markers)
    assert main(["--quiet", "fit", str(path), "--mgrm", "--pcs", "0", "--out", str(folder / "m")]) == 0
    report = json.loads((folder / "m.json").read_text())
    traits = root["traits"][:]
    arrays = fit_components(
        expected.matrices,
        traits,
        names=["trait1", "trait2"],
        X=np.ones((300, 1)),
        columns=["intercept"],
        component_names=expected.part_names,
        n_markers=expected.part_markers,
    )
    for ours, direct in zip(report["traits"], arrays):
        assert ours["h2"] == pytest.approx(direct.h2, rel=1e-12) and ours["logL"] == pytest.approx(direct.logL)
        assert [c["name"] for c in ours["components"]] == ["maf0-0.2", "maf0.2-0.5"]
        assert set(ours["components"][0]) == {"name", "n_markers", "sigma2", "sigma2_se", "h2", "h2_se"}
        assert sum(c["h2"] for c in ours["components"]) == pytest.approx(ours["h2"], rel=1e-12)
    assert report["grms"] == ["maf0-0.2", "maf0.2-0.5"] and report["n_markers_used"] == int(expected.part_markers.sum())
    hsq = (folder / "m.trait1.hsq").read_text().splitlines()
    assert [line.split("\t")[0] for line in hsq] == [
        "Source", "V(G1)", "V(G2)", "V(e)", "Vp", "V(G1)/Vp", "V(G2)/Vp", "", "Sum of V(G)/Vp", "logL", "logL0",
        "LRT", "df", "Pval", "n"]
    assert hsq[12] == "df\t2"


def test_gcta_files_give_the_same_fit(store, tmp_path):
    folder, path = store
    main(["--quiet", "grm", str(path), "--partition", PARTITION, "--out-gcta", str(folder / "parts")])
    root = zarr.open_group(path, mode="r")
    iid, traits = root["sample_id"][:], root["traits"][:]
    (tmp_path / "pheno.txt").write_text("".join(f"{i} {i} {a!r} {b!r}\n" for i, (a, b) in zip(iid, traits.tolist())))
    assert read_grm(folder / "parts.maf0-0.2").kinship.shape == (300, 300)
    assert main(["--quiet", "fit", "--mgrm-gcta", str(folder / "parts.mgrm"), "--pheno", str(tmp_path / "pheno.txt"),
                 "--pcs", "3", "--out", str(tmp_path / "g")]) == 0
    assert main(["--quiet", "fit", str(path), "--mgrm", "--pcs", "3", "--out", str(tmp_path / "s")]) == 0
    gcta, ours = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("g", "s"))
    for a, b in zip(gcta["traits"], ours["traits"]):  # the GCTA files hold K in float32
        assert a["h2"] == pytest.approx(b["h2"], abs=1e-5)
        assert [c["sigma2"] for c in a["components"]] == pytest.approx([c["sigma2"] for c in b["components"]],
                                                                       abs=1e-5)
    assert [c["name"] for c in gcta["traits"][0]["components"]] == ["parts.maf0-0.2", "parts.maf0.2-0.5"]


def test_bad_input_is_one_line_and_exit_2(store, tmp_path, capsys):
    folder, path = store
    cases = [
        (["grm", str(path), "--partition", "maf:0.6,0.7"], "with numbers in [0, 0.5]"),
        (["grm", str(path), "--partition", "maf:nan,0.5"], "with numbers in [0, 0.5]"),
        (["grm", str(path), "--partition", "maf:0.0,0.001,0.5"], "maf0-0.001 has no marker passing the filters"),
        (["fit", str(path), "--mgrm", "--method", "ml", "--out", str(tmp_path / "x")], "REML (AI-REML) only"),
        (["fit", str(path), "--partition", PARTITION, "--out", str(tmp_path / "x")], "--partition goes with --mgrm"),
        (["fit", "--mgrm-gcta", str(tmp_path / "none.txt"), "--pheno", "p", "--out", str(tmp_path / "x")],
         "none.txt: no such file"),
    ]
    for argv, message in cases:
        capsys.readouterr()
        assert main(["--quiet", *argv]) == 2, argv
        error = capsys.readouterr().err.strip()
        assert error.startswith("dask-h2: error: ") and message in error and "\n" not in error, error
    assert not (tmp_path / "x.json").exists()


def test_fit_mgrm_needs_a_partitioned_grm(tmp_path, capsys):
    path = simulate_to(
        tmp_path / "t.zarr", SimulationDesign(n_samples=50, n_markers=200, h2=(0.5,), seed=1), progress=False
    )
    assert main(["--quiet", "fit", str(path), "--mgrm", "--out", str(tmp_path / "x")]) == 2
    assert "no partitioned GRM: give the --partition of the markers" in capsys.readouterr().err


def test_a_non_psd_gcta_grm_is_warned_about_and_used(store, tmp_path, capsys):
    folder, path = store
    main(["--quiet", "grm", str(path), "--partition", PARTITION, "--out-gcta", str(folder / "parts")])
    first = read_grm(folder / "parts.maf0-0.2")
    bent = first.kinship.copy()
    bent[0, 1] = bent[1, 0] = 3.0  # no longer positive semidefinite
    write_grm(tmp_path / "bent", bent, iid=first.iid, n_markers=100)
    (tmp_path / "list.txt").write_text(f"{tmp_path / 'bent'}\n{folder / 'parts.maf0.2-0.5'}\n")
    traits = zarr.open_group(path, mode="r")["traits"][:, 0]
    (tmp_path / "pheno.txt").write_text("".join(f"{i} {i} {float(v)!r}\n" for i, v in zip(first.iid, traits)))
    assert main(["fit", "--mgrm-gcta", str(tmp_path / "list.txt"), "--pheno", str(tmp_path / "pheno.txt"),
                 "--pcs", "0", "--out", str(tmp_path / "b")]) == 0
    warning = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warning) == 1 and "bent.grm.bin is not positive semidefinite" in warning[0]
    assert "it is used as it is" in warning[0]


def test_ai_reml_out_of_iterations_is_flagged(store, tmp_path, capsys):
    folder, path = store
    main(["--quiet", "grm", str(path), "--partition", PARTITION])
    assert main(["fit", str(path), "--mgrm", "--max-iter", "1", "--out", str(tmp_path / "n")]) == 0
    captured = capsys.readouterr()
    report = json.loads((tmp_path / "n.json").read_text())
    assert all(not t["converged"] and np.isfinite(t["h2"]) for t in report["traits"])
    assert captured.err.count("AI-REML did not converge in 1 iterations") == 2
    assert "did not converge" in captured.out and not list(tmp_path.glob("n.*.hsq"))
