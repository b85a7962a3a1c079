"""Recorded outputs of a fixed set of commands on the demo's data: the same commands must give the
same files, byte for byte (every number to its last printed digit).

The files in ``tests/golden/`` were recorded with ``DASK_H2_RECORD_GOLDEN=1 pytest tests/test_golden.py``
before the package was restructured into folders; they change only when a change means to change
an output, and the commit that records them again says why.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import zarr

from dask_h2.cli import main

GOLDEN = Path(__file__).parent / "golden"
RECORD = os.environ.get("DASK_H2_RECORD_GOLDEN") == "1"
DEMO = ["--samples", "2000", "--markers", "20000", "--h2", "0.5,0.3,0.1,0", "--seed", "1"]  # `dask-h2 demo`'s data
COMMANDS = {
    "reml": ["fit", "demo.zarr"],
    "ml": ["fit", "demo.zarr", "--method", "ml"],
    "rhe": ["fit", "demo.zarr", "--method", "rhe"],
    "bivariate": ["fit", "demo.zarr", "--bivariate", "all"],
    "mgrm": ["fit", "demo.zarr", "--mgrm", "--partition", "maf:0,0.1,0.25,0.5"],
    "gcta": ["fit", "--grm", "g", "--pheno", "traits.txt"],
    "prevalence": ["fit", "--grm", "g", "--pheno", "disease.txt", "--prevalence", "0.2"],
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """The demo's store, its GRM as GCTA files, its traits and a 0/1 disease as phenotype files."""
    path = tmp_path_factory.mktemp("golden")
    assert main(["--quiet", "simulate", str(path / "demo.zarr"), *DEMO]) == 0
    assert main(["--quiet", "grm", str(path / "demo.zarr"), "--out-gcta", str(path / "g")]) == 0
    root = zarr.open_group(path / "demo.zarr", mode="r")
    iid, traits = root["sample_id"][:], root["traits"][:]
    (path / "traits.txt").write_text("FID IID a b c d\n" + "".join(
        f"{i} {i} {' '.join(repr(v) for v in row)}\n" for i, row in zip(iid, traits.tolist())))
    disease = (traits[:, 0] > np.quantile(traits[:, 0], 0.8)).astype(int)
    (path / "disease.txt").write_text("FID IID disease\n" + "".join(f"{i} {i} {d}\n" for i, d in zip(iid, disease)))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("name", COMMANDS)
def test_the_same_command_gives_the_same_files(folder: Path, name: str, monkeypatch) -> None:
    monkeypatch.chdir(folder)
    assert main(["--quiet", *COMMANDS[name], "--out", name]) == 0
    written = sorted(folder.glob(f"{name}.*"))
    if RECORD:
        for path in written:
            (GOLDEN / path.name).write_bytes(path.read_bytes())
    expected = sorted(GOLDEN.glob(f"{name}.*"))
    assert [p.name for p in written] == [p.name for p in expected]
    for made, recorded in zip(written, expected):
        assert made.read_text() == recorded.read_text(), made.name
