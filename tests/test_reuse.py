"""Cached products are reused only for the same inputs: ``dask-h2 run`` keys the store it makes on
every input file's content and every conversion option, and says in one line what it did."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from bed_reader import to_bed

from dask_h2.io.convert import simulate_to
from dask_h2.cli import main

N, M = 80, 600
RNG = np.random.default_rng(7)
IIDS = [f"s{k}" for k in range(N)]
TRAITS = RNG.standard_normal((N, 2))


@pytest.fixture()
def plink(tmp_path: Path) -> tuple[Path, Path]:
    bed = tmp_path / "geno.bed"
    to_bed(bed, RNG.integers(0, 3, (N, M)).astype(np.float32),
           properties={"iid": IIDS, "fid": IIDS, "sid": [f"rs{j}" for j in range(M)]})
    pheno = tmp_path / "pheno.txt"
    pheno.write_text("".join(f"{iid} {iid} {a} {b}\n" for iid, (a, b) in zip(IIDS, TRAITS)))
    return bed, pheno


def run(capsys, bed: Path, out: Path, *options: str) -> tuple[dict, str]:
    assert main(["run", str(bed), str(out), "--pcs", "2", *options]) == 0
    err = capsys.readouterr().err
    return json.loads(out.with_name(out.name + ".json").read_text()), err


def test_run_converts_again_when_a_phenotype_option_changes(plink, tmp_path, capsys):
    bed, pheno = plink
    out = tmp_path / "out"
    first, _ = run(capsys, bed, out, "--pheno", str(pheno), "--mpheno", "1")
    again, err = run(capsys, bed, out, "--pheno", str(pheno), "--mpheno", "1")
    assert "dask-h2: reusing" in err and again["traits"][0]["h2"] == first["traits"][0]["h2"]
    second, err = run(capsys, bed, out, "--pheno", str(pheno), "--mpheno", "2")
    assert "converting" in err and "mpheno 1 -> 2" in err
    assert second["traits"][0]["logL0"] != pytest.approx(first["traits"][0]["logL0"])


def test_run_converts_again_when_the_phenotype_file_is_edited_in_place(plink, tmp_path, capsys):
    bed, pheno = plink
    out = tmp_path / "out"
    first, _ = run(capsys, bed, out, "--pheno", str(pheno))
    stat = pheno.stat()
    swapped = "".join(f"{iid} {iid} {b} {a}\n" for iid, (a, b) in zip(IIDS, TRAITS))
    assert len(swapped) == stat.st_size
    pheno.write_text(swapped)
    os.utime(pheno, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same time: only the content differs
    second, err = run(capsys, bed, out, "--pheno", str(pheno))
    assert f"{pheno.resolve()} changed" in err
    assert [t["logL0"] for t in second["traits"]] == pytest.approx([t["logL0"] for t in first["traits"]][::-1])


def test_grm_reuse_is_said_in_one_line(plink, tmp_path, capsys):
    bed, pheno = plink
    out = tmp_path / "out"
    run(capsys, bed, out, "--pheno", str(pheno))
    _, err = run(capsys, bed, out, "--pheno", str(pheno), "--method", "ml")
    assert "reusing the GRM" in err
    _, err = run(capsys, bed, out, "--pheno", str(pheno), "--maf", "0.2")
    assert "reusing the GRM" not in err


def test_a_grm_is_reused_only_for_the_genotypes_it_was_computed_from(tmp_path, capsys):
    """The GRM's key holds the genotypes' checksums: a GRM group copied from another store (or
    left by other genotypes at the same path) is recomputed, not taken for this store's."""
    import shutil

    import zarr

    from dask_h2 import api
    from dask_h2.io.simulate import SimulationDesign

    first = simulate_to(
        tmp_path / "a.zarr", SimulationDesign(n_samples=60, n_markers=500, h2=(0.5,), seed=1), progress=False
    )
    second = simulate_to(
        tmp_path / "b.zarr", SimulationDesign(n_samples=60, n_markers=500, h2=(0.5,), seed=2), progress=False
    )
    api.grm(first, progress=False)
    own = api.grm(second, progress=False).kinship[:]
    shutil.rmtree(second / "grm")
    shutil.copytree(first / "grm", second / "grm")  # same samples, markers, QC and scale: only the genotypes differ
    assert main(["grm", str(second)]) == 0
    assert "reusing the GRM" not in capsys.readouterr().err
    np.testing.assert_array_equal(zarr.open_group(second, mode="r")["grm/kinship"][:], own)


def test_a_cached_subset_eigendecomposition_is_reused_only_with_its_grm(tmp_path):
    """Each eigendecomposition of K[index][:, index] records the key of its GRM and is used only with it."""
    import zarr

    from dask_h2 import api
    from dask_h2.io.simulate import SimulationDesign

    store = simulate_to(
        tmp_path / "s.zarr", SimulationDesign(n_samples=80, n_markers=500, h2=(0.5,), seed=3), progress=False
    )
    root = zarr.open_group(store, mode="r+")
    traits = root["traits"][:]
    traits[::5, 0] = np.nan
    root["traits"][:] = traits
    expected = api.fit(store, pcs=2, progress=False).traits[0]
    (subset,) = root["grm/subsets"].group_values()
    subset["eigenvalues"][:] = subset["eigenvalues"][:] * 2  # a decomposition that is not of this K
    assert api.fit(store, pcs=2, progress=False).traits[0].h2 != expected.h2  # the cache is used ...
    key = subset.attrs["key"]
    subset.attrs["key"] = {**key, "grm": {**key["grm"], "genotypes": "another"}}
    assert api.fit(store, pcs=2, progress=False).traits[0].h2 == expected.h2  # ... only with its own GRM
