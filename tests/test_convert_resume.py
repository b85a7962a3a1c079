"""A conversion killed with SIGKILL halfway leaves a store every command refuses; re-running
`dask-h2 convert` resumes it (keeping the chunks already written) and gives exactly the
store an uninterrupted conversion gives."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from dask_h2.io.convert import simulate_to
from dask_h2 import api
from dask_h2.cli import main
from dask_h2.io.simulate import SimulationDesign
from dask_h2.store import ATTRS_KEY, is_complete

CHUNK = 256  # markers: 94 chunks, so that the kill lands between chunks


@pytest.fixture(scope="module")
def rdata(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("resume") / "mid.RData"
    return simulate_to(path, SimulationDesign(n_samples=1000, n_markers=24_000, h2=(0.5, 0.2), seed=11), progress=False)


def recorded_chunks(store: Path) -> list[int | None]:
    """The per-chunk checksums recorded so far ([] while the store's metadata is not there)."""
    try:
        meta = json.loads((store / "zarr.json").read_text())
    except (OSError, ValueError):  # not written yet, or caught mid-write
        return []
    return meta.get("attributes", {}).get(ATTRS_KEY, {}).get("chunk_crc32", [])


def kill_halfway(rdata: Path, store: Path) -> list[int | None]:
    """Start `dask-h2 convert`, SIGKILL it once some but not all chunks are recorded."""
    command = [sys.executable, "-m", "dask_h2.cli", "--quiet", "convert", str(rdata), str(store), "--chunk", str(CHUNK)]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        recorded = recorded_chunks(store)
        if recorded and 4 <= sum(c is not None for c in recorded) < len(recorded) // 2:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
            return recorded
        time.sleep(0.005)
    child.kill()
    pytest.fail(f"the conversion ended before it could be killed halfway: {child.stderr.read().decode()}")


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted(rdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store = tmp_path / "killed.zarr"
    recorded = kill_halfway(rdata, store)
    assert store.exists() and not is_complete(store)
    for command in (["grm", str(store)], ["fit", str(store), "--out", str(tmp_path / "fit")],
                    ["run", str(store), str(tmp_path / "run")]):
        assert main(["--quiet", *command]) == 2
        err = capsys.readouterr().err.strip()
        assert "incomplete" in err and "killed.zarr" in err and "\n" not in err

    done = [k for k, crc in enumerate(recorded) if crc is not None]
    chunk_files = {k: store / "call_dosage" / "c" / str(k) / "0" for k in done}
    stamps = {k: path.stat().st_mtime_ns for k, path in chunk_files.items()}
    assert main(["--quiet", "convert", str(rdata), str(store), "--chunk", str(CHUNK)]) == 0
    assert is_complete(store) and not store.with_name("killed.zarr.spool").exists()
    assert {k: chunk_files[k].stat().st_mtime_ns for k in done} == stamps  # resumed: kept, not rewritten

    reference = api.convert(rdata, tmp_path / "uninterrupted.zarr", chunk_variants=CHUNK, progress=False)
    resumed, whole = zarr.open_group(store, mode="r"), zarr.open_group(reference, mode="r")
    assert dict(resumed.attrs) == dict(whole.attrs)
    for name in ("call_dosage", "traits", "sample_id", "variant_id", "trait_name"):
        np.testing.assert_array_equal(resumed[name][:], whole[name][:])
    assert [resumed.attrs[ATTRS_KEY]["chunk_crc32"][k] for k in done] == [recorded[k] for k in done]


def test_complete_store_is_kept_unless_overwrite(rdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store = api.convert(rdata, tmp_path / "done.zarr", chunk_variants=4096, progress=False)
    assert main(["--quiet", "convert", str(rdata), str(store)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["--quiet", "convert", str(rdata), str(store), "--overwrite", "--chunk", "8000"]) == 0
    assert zarr.open_group(store, mode="r")["call_dosage"].chunks == (8000, 1000)


def test_interrupted_store_with_other_parameters_starts_over(rdata: Path, tmp_path: Path) -> None:
    store = api.convert(rdata, tmp_path / "other.zarr", chunk_variants=4096, progress=False)
    root = zarr.open_group(store, mode="r+")
    root.attrs[ATTRS_KEY] = {**root.attrs[ATTRS_KEY], "complete": False}  # as if interrupted
    api.convert(rdata, store, chunk_variants=2048, progress=False)  # another chunk size: not resumable
    root = zarr.open_group(store, mode="r")
    assert root["call_dosage"].chunks == (2048, 1000) and len(root.attrs[ATTRS_KEY]["chunk_crc32"]) == 12


def test_resume_rewrites_a_chunk_that_reads_back_wrong(rdata: Path, tmp_path: Path) -> None:
    store = api.convert(rdata, tmp_path / "damaged.zarr", chunk_variants=4096, progress=False)
    expected = zarr.open_group(store, mode="r")["call_dosage"][:]
    root = zarr.open_group(store, mode="r+")
    root.attrs[ATTRS_KEY] = {**root.attrs[ATTRS_KEY], "complete": False}  # as if interrupted
    first, second = (store / "call_dosage" / "c" / str(k) / "0" for k in (0, 1))
    first.write_bytes(second.read_bytes())  # a readable chunk holding the wrong genotypes
    stamp = second.stat().st_mtime_ns
    api.convert(rdata, store, chunk_variants=4096, progress=False)
    np.testing.assert_array_equal(zarr.open_group(store, mode="r")["call_dosage"][:], expected)
    assert second.stat().st_mtime_ns == stamp and is_complete(store)
