"""Cached products are reused only for the same inputs: ``dask-h2 run`` keys the store it makes on
every input file's content and every conversion option, and says in one line what it did."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from bed_reader import to_bed

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
