"""Runs that share a store at once, as two real processes: each gives the answer it gives alone.

The moments path writes the jackknife blocks' sums to a scratch array of each run's own; a product
that both runs would compute and cache in the store (the GRM, the PCs) is computed by one while the
other waits for it and reuses it.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest
import zarr

from dask_h2.io.convert import simulate_to
from dask_h2.scratch import SCRATCH
from dask_h2.io.simulate import SimulationDesign

pytestmark = pytest.mark.slow  # the second step of .ci/run (pytest -m slow)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "shared.zarr"
    simulate_to(path, SimulationDesign(n_samples=400, n_markers=3000, h2=(0.5, 0.2), seed=4), progress=False)
    return path


def run_together(commands: list[list[str]]) -> list[subprocess.CompletedProcess]:
    """Start every command at once (separate processes) and wait for all."""
    processes = [subprocess.Popen(["dask-h2", "--quiet", *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for command in commands]
    results = []
    for command, process in zip(commands, processes):
        out, err = process.communicate(timeout=600)
        results.append(subprocess.CompletedProcess(command, process.returncode, out, err))
    return results


def traits(prefix: Path) -> list[dict]:
    return json.loads(prefix.with_suffix(".json").read_text())["traits"]


@pytest.mark.parametrize("method", ["rhe", "reml"])
def test_two_fits_at_once_equal_each_fit_alone(store: Path, tmp_path: Path, method: str) -> None:
    options = {"rhe": ["--method", "rhe", "--pcs", "2", "--jackknife-blocks", "20"], "reml": ["--pcs", "2"]}[method]
    commands = [["fit", str(store), *options, "--seed", str(seed), "--out", str(tmp_path / f"together{seed}")]
                for seed in (11, 12)] if method == "rhe" else \
        [["fit", str(store), *options, "--out", str(tmp_path / f"together{k}")] for k in (11, 12)]
    for result in run_together(commands):
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
    for k, command in zip((11, 12), commands):
        alone = tmp_path / f"alone{k}"
        assert subprocess.run(["dask-h2", "--quiet", *command[:-1], str(alone)], capture_output=True).returncode == 0
        assert traits(tmp_path / f"together{k}") == traits(alone)
    assert not (store / SCRATCH).exists()  # every run removed its scratch, the last one the group


def test_scratch_of_a_run_that_no_longer_exists_is_removed_by_the_next(store: Path, tmp_path: Path) -> None:
    """A run killed (or interrupted while a task still wrote) leaves its scratch; the next run on the
    store removes it, and leaves those of live runs and of other machines alone."""
    group = zarr.open_group(store, mode="r+").require_group(SCRATCH)
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = socket.gethostname()
    names = {
        "dead": f"{host}-{dead.pid}-0a0b",
        "alive": f"{host}-{os.getpid()}-1a1b",
        "elsewhere": f"other-{dead.pid}-2a2b",
    }
    for name in names.values():
        group.create_array(name, shape=(2, 3), chunks=(1, 3), dtype="float32")[:] = 1.0
    assert subprocess.run(["dask-h2", "--quiet", "fit", str(store), "--method", "rhe", "--pcs", "0",
                           "--jackknife-blocks", "20", "--out", str(tmp_path / "next")]).returncode == 0
    left = {path.name for path in (store / SCRATCH).iterdir() if path.is_dir()}
    assert left == {names["alive"], names["elsewhere"]}
