"""A run's report is one set of files: a rerun into the same prefix leaves nothing of the earlier run
beside it, and names that cannot make distinct files are refused before any work."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr

from dask_h2.io.convert import simulate_to
from dask_h2.cli import main
from dask_h2.io.simulate import SimulationDesign
from dask_h2.store import write_traits


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "two.zarr"
    simulate_to(path, SimulationDesign(n_samples=300, n_markers=1200, h2=(0.5, 0.3), seed=6), progress=False)
    return path


def hsq_files(folder: Path, prefix: str) -> set[str]:
    return {path.name for path in folder.glob(f"{prefix}.*.hsq")}


def test_a_rerun_that_does_not_converge_removes_the_earlier_hsq(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "x"
    partition = ["--partition", "maf:0,0.2,0.5", "--pcs", "2"]
    assert main(["--quiet", "fit", str(store), "--mgrm", *partition, "--out", str(out)]) == 0
    assert hsq_files(tmp_path, "x") == {"x.trait1.hsq", "x.trait2.hsq"}
    assert main(["--quiet", "fit", str(store), "--mgrm", *partition, "--max-iter", "1", "--out", str(out)]) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    assert [t["converged"] for t in report["traits"]] == [False, False]
    assert hsq_files(tmp_path, "x") == set() and report["outputs"] == []


def test_a_rerun_with_fewer_traits_removes_the_earlier_hsq(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "y"
    assert main(["--quiet", "fit", str(store), "--pcs", "2", "--out", str(out)]) == 0
    assert hsq_files(tmp_path, "y") == {"y.trait1.hsq", "y.trait2.hsq"}
    root = zarr.open_group(store, mode="r+")
    write_traits(root, root["traits"][:, :1], trait_name=np.array(["trait1"], dtype=object))
    assert main(["--quiet", "fit", str(store), "--pcs", "2", "--out", str(out)]) == 0
    assert hsq_files(tmp_path, "y") == {"y.trait1.hsq"}
    assert json.loads(out.with_suffix(".json").read_text())["outputs"] == ["y.trait1.hsq"]


def test_files_of_another_prefix_in_the_same_folder_are_left_alone(store: Path, tmp_path: Path) -> None:
    assert main(["--quiet", "fit", str(store), "--pcs", "2", "--out", str(tmp_path / "a.b")]) == 0
    assert main(["--quiet", "fit", str(store), "--pcs", "2", "--out", str(tmp_path / "a")]) == 0
    assert hsq_files(tmp_path, "a.b") == {"a.b.trait1.hsq", "a.b.trait2.hsq"}


@pytest.mark.parametrize("names, message", [(["y", "y"], "trait name 'y' occurs 2 times"),
                                            (["a/b", "c"], "trait name 'a/b' cannot be part of a file name")])
@pytest.mark.parametrize("method", ["reml", "rhe"])
def test_trait_names_of_a_store_are_checked_before_any_work(store: Path, tmp_path: Path, capsys, names, message,
                                                             method) -> None:
    root = zarr.open_group(store, mode="r+")
    write_traits(root, root["traits"][:], trait_name=np.array(names, dtype=object))
    assert main(["--quiet", "fit", str(store), "--method", method, "--out", str(tmp_path / "z")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dask-h2: error: ") and message in err and "\n" not in err, err
    assert "grm" not in zarr.open_group(store, mode="r") and not list(tmp_path.glob("z*"))
