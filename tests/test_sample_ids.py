"""Duplicate sample IDs are refused (issue 12, item 7): `--remove ind1` dropped two samples, the
.grm.id repeated ind1 and covariates were matched to both copies."""
from __future__ import annotations

import numpy as np
import zarr
from bed_reader import to_bed

from dask_h2.io.convert import simulate_to
from dask_h2.io.rdata_writer import RMatrix, write_rdata
from dask_h2.io.gcta import write_grm
from dask_h2.io.simulate import SimulationDesign
from test_cli import _one_line_error

N, M = 40, 300
IIDS = [f"ind{i + 1}" for i in range(N - 1)] + ["ind1"]


def test_bed_with_a_repeated_iid(tmp_path, capsys):
    bed = tmp_path / "dup.bed"
    to_bed(bed, np.random.default_rng(0).integers(0, 3, (N, M)).astype(np.float32),
           properties={"iid": IIDS, "fid": [f"f{i}" for i in range(N)], "sid": [f"rs{j}" for j in range(M)]})
    err = _one_line_error(capsys, ["convert", str(bed), str(tmp_path / "out.zarr")])
    assert "dup.bed" in err and "sample ID 'ind1' occurs 2 times" in err and not (tmp_path / "out.zarr").exists()
    err = _one_line_error(capsys, ["run", str(bed), str(tmp_path / "run")])
    assert "'ind1' occurs 2 times" in err and not (tmp_path / "run.zarr").exists()


def test_rdata_with_repeated_row_names(tmp_path, capsys):
    genotypes = np.random.default_rng(1).integers(0, 3, (N, M)).astype(np.int32)
    path = tmp_path / "dup.RData"
    write_rdata(
        path,
        [
            (
                "G",
                RMatrix(
                    kind="integer",
                    nrow=N,
                    ncol=M,
                    blocks=[genotypes.T],
                    rownames=IIDS,
                    colnames=[f"m{j}" for j in range(M)],
                ),
            ),
            (
                "Y",
                RMatrix(
                    kind="double",
                    nrow=N,
                    ncol=1,
                    blocks=[np.arange(N, dtype=float)[None]],
                    rownames=IIDS,
                    colnames=["y"],
                ),
            ),
        ],
    )
    err = _one_line_error(capsys, ["convert", str(path), str(tmp_path / "out.zarr")])
    assert "dup.RData" in err and "'ind1' occurs 2 times" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dup.RData"]  # no store, no spool


def test_store_and_gcta_grm_with_a_repeated_id(tmp_path, capsys):
    store = simulate_to(
        tmp_path / "s.zarr", SimulationDesign(n_samples=N, n_markers=M, h2=(0.5,), seed=1), progress=False
    )
    ids = zarr.open_group(store, mode="r+")["sample_id"]
    ids[N - 1] = "ind1"  # a store written before IDs were checked
    remove = tmp_path / "remove.txt"
    remove.write_text("ind1 ind1\n")
    err = _one_line_error(capsys, ["fit", str(store), "--out", str(tmp_path / "fit"), "--remove", str(remove)])
    assert "s.zarr: sample_id: sample ID 'ind1' occurs 2 times" in err
    write_grm(tmp_path / "k", np.eye(N), iid=np.array(IIDS, dtype=object), n_markers=M)
    pheno = tmp_path / "p.txt"
    pheno.write_text("".join(f"{i} {i} {k}\n" for k, i in enumerate(IIDS[:-1])))
    err = _one_line_error(
        capsys, ["fit", "--grm", str(tmp_path / "k"), "--pheno", str(pheno), "--out", str(tmp_path / "f")]
    )
    assert "k.grm.id: IID 'ind1' occurs 2 times" in err
    assert not (tmp_path / "fit.json").exists() and not (tmp_path / "f.json").exists()
