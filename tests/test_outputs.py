"""Outputs that cannot be written (issue 12, item 5): a read-only folder, a folder without write
permission, a full disk. Each command says so in one line naming the path and the cause, exits
with code 2, and leaves nothing under an output's name that a later command would take for
complete. Real conditions, not mocks: the commands run in a private mount namespace with a
read-only bind mount or a small tmpfs (`unshare -m`), or without root's permission override
(`setpriv`); the tests skip where the machine does not allow that."""
from __future__ import annotations

import errno
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr
from bed_reader import to_bed

from dask_h2.io.convert import simulate_to
from dask_h2 import api
from dask_h2.io.outputs import atomic_outputs
from dask_h2.io.simulate import SimulationDesign

N, M = 400, 12_000  # 4.8 M genotypes: an RData file of them is spooled (at least 4 M values)


def _can(command: list[str]) -> bool:
    try:
        return subprocess.run(command, capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("outputs")
    design = SimulationDesign(n_samples=N, n_markers=M, h2=(0.5, 0.2), seed=4)
    simulate_to(folder / "in.RData", design, progress=False)
    store = simulate_to(folder / "store.zarr", design, progress=False)
    api.grm(store, progress=False)
    rng = np.random.default_rng(1)
    iids = [f"ind{i + 1}" for i in range(N)]
    to_bed(folder / "geno.bed", rng.integers(0, 3, (N, M)).astype(np.float32),
           properties={"iid": iids, "fid": iids, "sid": [f"rs{j}" for j in range(M)]})
    return folder


@pytest.fixture(scope="module")
def mounts(tmp_path_factory) -> None:
    probe = tmp_path_factory.mktemp("probe")
    if not _can(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {probe}"]):
        pytest.skip("no private mount namespace here (unshare -m with mount needs CAP_SYS_ADMIN)")


def dask_h2(*args: object, setup: str = "", after: str = "true",
            prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """`dask-h2 --quiet ARGS` in a subprocess; with ``setup``, in a private mount namespace after
    those shell commands, and followed there by the shell commands ``after`` (which see its mounts)."""
    argv = [*prefix, sys.executable, "-m", "dask_h2", "--quiet", *map(str, args)]
    if setup:
        argv = ["unshare", "-m", "sh", "-c", f'{setup} || exit 99; "$@"; code=$?; {after}; exit $code', "sh", *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=600)


def listing(folder: Path, record: Path) -> str:
    """Shell commands that record the names under ``folder`` (recursively) and whether any store
    there is complete, into ``record`` (outside the mounts)."""
    check = "import sys; from dask_h2.store import is_complete; print(any(map(is_complete, sys.argv[1:])))"
    return f"(cd {folder} && find . | sort; {sys.executable} -c '{check}' {folder}/*.zarr) > {record}"


def read_only(folder: Path) -> str:
    return f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder} {folder}"


def small_disk(folder: Path, size: str) -> str:
    return f"mount -t tmpfs -o size={size} tmpfs {folder}"


def one_line(result: subprocess.CompletedProcess, *expected: str) -> str:
    err = result.stderr.strip()
    assert result.returncode == 2 and err.startswith("dask-h2: error: ") and "\n" not in err, result.stderr
    for text in expected:
        assert text in err, err
    return err


@pytest.mark.parametrize("args", [
    ["fit", "{d}/store.zarr", "--out", "{o}/fit"],
    *(pytest.param(args, marks=pytest.mark.slow) for args in (
        ["plot", "{d}/store.zarr", "--out", "{o}/plot"],
        ["run", "{d}/in.RData", "{o}/run"],
        ["convert", "{d}/in.RData", "{o}/out.zarr"],
        ["simulate", "{o}/sim.RData", "--samples", "50", "--markers", "100"],
        ["grm", "{d}/store.zarr", "--out-gcta", "{o}/gcta"],
        ["demo", "--out-dir", "{o}/demo", "--samples", "50", "--markers", "100"])),
])
def test_read_only_output_folder(data, mounts, tmp_path, args):
    out = tmp_path / "ro"
    out.mkdir()
    result = dask_h2(*(a.format(d=data, o=out) for a in args), setup=read_only(out))
    one_line(result, str(out), "read-only")
    assert list(out.iterdir()) == []


def test_folder_without_write_permission(data, tmp_path):
    if not _can(["setpriv", "--bounding-set=-dac_override,-dac_read_search", "true"]):
        pytest.skip("setpriv cannot drop root's permission override here")
    out = tmp_path / "locked"
    out.mkdir(mode=0o555)
    result = dask_h2("fit", data / "store.zarr", "--out", out / "fit",
                     prefix=("setpriv", "--inh-caps=-dac_override,-dac_read_search",
                             "--bounding-set=-dac_override,-dac_read_search"))
    one_line(result, str(out), "permission denied")
    assert list(out.iterdir()) == []


@pytest.mark.slow
def test_full_disk_while_spooling_an_rdata_file_is_not_blamed_on_the_input(data, mounts, tmp_path):
    out, record = tmp_path / "small", tmp_path / "record.txt"
    out.mkdir()
    result = dask_h2("convert", data / "in.RData", out / "out.zarr", setup=small_disk(out, "1m"),
                     after=listing(out, record))
    err = one_line(result, "out.zarr.spool", "No space left on device", "spooling")
    assert "corrupt" not in err and "truncated" not in err and "in.RData" not in err
    assert record.read_text().split() == [".", "False"]  # spool removed, no store


@pytest.mark.slow
def test_full_disk_while_writing_the_store(data, mounts, tmp_path):
    out, record = tmp_path / "small", tmp_path / "record.txt"
    out.mkdir()
    result = dask_h2("convert", data / "geno.bed", out / "out.zarr", "--chunk", "500", setup=small_disk(out, "600k"),
                     after=listing(out, record))
    one_line(result, "out.zarr", "No space left on device")
    names = record.read_text().split()
    assert "./out.zarr/call_dosage" in names and names[-1] == "False"  # a store begun, never marked complete


@pytest.mark.slow
def test_full_disk_for_the_gcta_files_leaves_none(data, mounts, tmp_path):
    out, record = tmp_path / "small", tmp_path / "record.txt"
    out.mkdir()
    result = dask_h2("grm", data / "store.zarr", "--out-gcta", out / "k", setup=small_disk(out, "200k"),
                     after=listing(out, record))
    one_line(result, "k.grm", "No space left on device")
    assert record.read_text().split() == [".", "False"]  # neither k.grm.* nor their .partial files


@pytest.mark.slow
def test_read_only_store_computes_subset_eigendecompositions_in_memory(data, mounts, tmp_path):
    """A missingness pattern needs K's submatrix decomposed; a read-only store cannot keep it:
    the fit goes on in memory and says so in one line, with the result of a writable store."""
    store = tmp_path / "ro" / "store.zarr"
    shutil.copytree(data / "store.zarr", store)
    root = zarr.open_group(store, mode="r+")
    traits = root["traits"][:]
    traits[::7, 0] = np.nan
    root["traits"][:] = traits
    writable = tmp_path / "rw.zarr"
    shutil.copytree(store, writable)
    expected = api.fit(writable, progress=False)
    result = dask_h2("fit", store, "--out", tmp_path / "fit", setup=read_only(store.parent))
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "could not cache the eigendecomposition" in lines[0] and "computed in memory" in lines[0]
    report = json.loads((tmp_path / "fit.json").read_text())
    assert [t["h2"] for t in report["traits"]] == [t.h2 for t in expected.traits]
    assert "subsets" not in zarr.open_group(store, mode="r")["grm"]


@pytest.mark.slow
def test_read_only_store_without_its_grm(data, mounts, tmp_path):
    store = tmp_path / "ro" / "store.zarr"
    shutil.copytree(data / "store.zarr", store)
    shutil.rmtree(store / "grm")
    result = dask_h2("fit", store, "--out", tmp_path / "fit", setup=read_only(store.parent))
    one_line(result, "store.zarr", "Read-only file system")
    assert not (tmp_path / "fit.json").exists()


def test_atomic_outputs_leave_nothing_when_writing_fails(tmp_path):
    (tmp_path / "b.txt").write_text("old")
    with pytest.raises(OSError), atomic_outputs(tmp_path / "a.txt", tmp_path / "b.txt") as (a, b):
        a.write_text("new a")
        b.write_text("new b")
        raise OSError(errno.ENOSPC, "No space left on device", str(b))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.txt"] and (tmp_path / "b.txt").read_text() == "old"
    with atomic_outputs(tmp_path / "a.txt", tmp_path / "b.txt") as (a, b):
        a.write_text("new a")
        b.write_text("new b")
    assert [(p.name, p.read_text()) for p in sorted(tmp_path.iterdir())] == [("a.txt", "new a"), ("b.txt", "new b")]
