"""Interrupts at any moment: SIGINT (Ctrl-C), SIGTERM and SIGKILL during `convert`, `grm` and `run`
leave a state that the plain re-run of the same command resumes or redoes, ending exactly as an
uninterrupted run; SIGINT and SIGTERM end with one line, `dask-h2: interrupted`, and nothing else.

A moment is random: either from the start of the process (Python's imports included) or from
when its output first appears on disk, plus a random delay within the measured length of that
phase. Where the signal lands does not matter to the assertions, so the tests hold on a loaded
machine; a run that finished before its signal is not counted among the interrupted ones.
"""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import zarr

from dask_h2 import api
from dask_h2.cli import main
from dask_h2.simulate import SimulationDesign
from dask_h2.store import GRM_GROUP, is_complete

pytestmark = pytest.mark.slow
CHUNK = 256
MOMENTS = {signal.SIGINT: 10, signal.SIGKILL: 10, signal.SIGTERM: 2}  # interrupted runs per command and signal
QUIET_EXIT = {signal.SIGINT: ({130, -signal.SIGINT}, "dask-h2: interrupted"),
              signal.SIGTERM: ({143, -signal.SIGTERM}, "dask-h2: interrupted"),
              signal.SIGKILL: ({-signal.SIGKILL}, "")}
TIMEOUT = 300  # seconds: generous, for a loaded machine


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("interrupts")
    design = SimulationDesign(500, 12_000, (0.5, 0.2), seed=21)
    rdata = api.simulate_to(folder / "in.RData", design, progress=False)
    reference = api.convert(rdata, folder / "reference.zarr", chunk_variants=CHUNK, progress=False)
    plain = folder / "plain.zarr"  # converted, without a GRM: what each grm run starts from
    shutil.copytree(reference, plain)
    api.grm(reference, progress=False)
    return {"folder": folder, "rdata": rdata, "reference": reference, "plain": plain}


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "dask_h2", "--quiet", *[str(a) for a in args]]


def start(argv: list[str]) -> subprocess.Popen:
    """The child process, with Ctrl-C's default action even when the tests run where SIGINT is
    ignored (a background job), as it is in a terminal."""
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def interrupt_at_random(argv: list[str], output: Path, signum: int, rng: np.random.Generator,
                        phases: tuple[float, float]) -> subprocess.CompletedProcess | None:
    """Run ``argv`` and send ``signum`` at a random moment: within ``phases[0]`` seconds of its
    start, or within ``phases[1]`` seconds of ``output`` appearing. None if it finished first."""
    child = start(argv)
    from_output = rng.random() < 0.5
    deadline = time.monotonic() + TIMEOUT
    if from_output:
        while not output.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
    time.sleep(rng.uniform(0.0, phases[1] if from_output else phases[0]))
    if child.poll() is None:
        child.send_signal(signum)
    err = child.communicate(timeout=TIMEOUT)[1]
    if child.returncode == 0:
        return None
    return subprocess.CompletedProcess(argv, child.returncode, "", err)


def measured_phases(argv: list[str], output: Path, reset: Callable[[], None]) -> tuple[float, float]:
    """(seconds from start to the end, seconds from ``output`` appearing to the end) of one run."""
    reset()
    started = time.monotonic()
    child = start(argv)
    appeared = None
    while child.poll() is None:
        if appeared is None and output.exists():
            appeared = time.monotonic()
        time.sleep(0.002)
    assert child.returncode == 0, child.stderr.read()
    ended = time.monotonic()
    return ended - started, ended - (appeared or started)


def check_interrupts(argv: list[str], output: Path, reset: Callable[[], None], rerun: Callable[[], None],
                     check_result: Callable[[], None], seed: int,
                     finished: Callable[[], bool] = lambda: False) -> dict[int, int]:
    """Interrupt ``argv`` MOMENTS[signal] times per signal, each time from the state ``reset`` makes;
    after each, ``rerun`` (the plain command) must finish and ``check_result`` must pass. A run
    whose work was ``finished`` when the signal came (during Python's exit) is not counted."""
    rng = np.random.default_rng(seed)
    phases = measured_phases(argv, output, reset)
    counts = {}
    for signum, wanted in MOMENTS.items():
        interrupted = 0
        for _ in range(4 * wanted):
            if interrupted == wanted:
                break
            reset()
            result = interrupt_at_random(argv, output, signum, rng, phases)
            if result is None:
                continue
            codes, said = QUIET_EXIT[signum]
            assert result.returncode in codes and result.stderr.strip() in (said, ""), \
                f"{signal.Signals(signum).name}: exit {result.returncode}, stderr {result.stderr!r}"
            if finished():
                check_result()
                continue
            rerun()
            check_result()
            interrupted += 1
        counts[signum] = interrupted
    assert counts == MOMENTS, f"interrupted runs by signal: {counts}"
    return counts


def assert_same_store(store: Path, reference: Path, arrays: tuple[str, ...]) -> None:
    a, b = zarr.open_group(store, mode="r"), zarr.open_group(reference, mode="r")
    assert is_complete(store)
    for name in arrays:
        np.testing.assert_array_equal(a[name][:], b[name][:], err_msg=name)


def test_convert_interrupted_at_random_moments_resumes_to_the_same_store(inputs, tmp_path, capsys):
    store = tmp_path / "out.zarr"
    argv = command("convert", inputs["rdata"], store, "--chunk", CHUNK)

    def reset():
        shutil.rmtree(store, ignore_errors=True)

    def rerun():
        assert main(["--quiet", "convert", str(inputs["rdata"]), str(store), "--chunk", str(CHUNK)]) == 0
        assert capsys.readouterr().err == ""

    def same():
        assert_same_store(store, inputs["reference"], ("call_dosage", "traits", "sample_id", "variant_id", "trait_name"))
        assert dict(zarr.open_group(store, mode="r").attrs) == dict(zarr.open_group(inputs["reference"], mode="r").attrs)
        assert not store.with_name("out.zarr.spool").exists()

    check_interrupts(argv, store, reset, rerun, same, seed=1, finished=lambda: is_complete(store))


def test_grm_interrupted_at_random_moments_is_redone_to_the_same_grm(inputs, tmp_path, capsys):
    store = tmp_path / "g.zarr"
    argv = command("grm", store)

    def reset():
        shutil.rmtree(store, ignore_errors=True)
        shutil.copytree(inputs["plain"], store)

    def rerun():
        assert main(["--quiet", "grm", str(store)]) == 0
        assert capsys.readouterr().err == ""

    def same():
        assert_same_store(store, inputs["reference"], tuple(f"{GRM_GROUP}/{name}" for name in (
            "kinship", "eigenvalues", "eigenvectors", "sample_index", "variant_allele_frequency")))
        grm = zarr.open_group(store, mode="r")[GRM_GROUP]
        assert dict(grm.attrs) == dict(zarr.open_group(inputs["reference"], mode="r")[GRM_GROUP].attrs)

    check_interrupts(argv, store / GRM_GROUP, reset, rerun, same, seed=2)


def test_run_interrupted_then_rerun_gives_the_uninterrupted_report(inputs, tmp_path, capsys):
    prefix = tmp_path / "run"
    assert main(["--quiet", "run", str(inputs["rdata"]), str(inputs["folder"] / "whole")]) == 0
    expected = json.loads((inputs["folder"] / "whole.json").read_text())
    argv = command("run", inputs["rdata"], prefix)
    rng = np.random.default_rng(3)
    phases = measured_phases(argv, prefix.with_name("run.zarr"), lambda: None)
    for signum in (signal.SIGINT, signal.SIGKILL, signal.SIGTERM):
        for _ in range(2):
            for path in tmp_path.iterdir():
                shutil.rmtree(path) if path.is_dir() else path.unlink()
            result = interrupt_at_random(argv, prefix.with_name("run.zarr"), signum, rng, phases)
            if result is not None:
                codes, said = QUIET_EXIT[signum]
                assert result.returncode in codes and result.stderr.strip() in (said, ""), result
                assert not prefix.with_name("run.json").exists() or json.loads(
                    prefix.with_name("run.json").read_text()) == expected
            assert main(["--quiet", "run", str(inputs["rdata"]), str(prefix)]) == 0
            capsys.readouterr()
            assert json.loads(prefix.with_name("run.json").read_text()) == expected


def test_store_interrupted_before_its_ids_were_written_is_started_over(inputs, tmp_path, monkeypatch):
    """Issue 12, item 3: an interrupt right after `call_dosage` was created left a store whose
    re-run failed with KeyError: 'sample_id' every time."""
    import dask_h2.store as store_module

    real = store_module._write_strings

    def interrupted(root, name, values, dim):
        if name == "sample_id":
            raise KeyboardInterrupt
        real(root, name, values, dim)

    store = tmp_path / "early.zarr"
    monkeypatch.setattr(store_module, "_write_strings", interrupted)
    with pytest.raises(KeyboardInterrupt):
        api.convert(inputs["rdata"], store, chunk_variants=CHUNK, progress=False)
    monkeypatch.setattr(store_module, "_write_strings", real)
    assert sorted(p.name for p in store.iterdir()) == ["call_dosage", "zarr.json"] and not is_complete(store)
    api.convert(inputs["rdata"], store, chunk_variants=CHUNK, progress=False)
    assert_same_store(store, inputs["reference"], ("call_dosage", "traits", "sample_id", "variant_id"))


def test_interrupt_during_python_start_up_is_one_line():
    """SIGINT while Python still imports dask-h2's dependencies: no KeyboardInterrupt traceback."""
    child = start(command("grm", "nothing.zarr"))
    time.sleep(0.3)  # the first imports; if they are already done, the interrupt still must be quiet
    child.send_signal(signal.SIGINT)
    err = child.communicate(timeout=TIMEOUT)[1]
    assert child.returncode in (130, 2, -signal.SIGINT) and "Traceback" not in err and len(err.splitlines()) <= 1, err
