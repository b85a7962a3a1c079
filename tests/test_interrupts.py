"""Interrupts at any moment: SIGINT (Ctrl-C), SIGTERM and SIGKILL during `convert`, `grm` and `run`
leave a state that the plain re-run of the same command resumes or redoes, ending exactly as an
uninterrupted run; SIGINT and SIGTERM end with one line, `dask-h2: interrupted`, and nothing else
(also during an MC-REML fit's iterations).

A moment is random: either from the start of the command or from when its output first appears
on disk, plus a random delay within the measured length of that phase. Where the signal lands
does not matter to the assertions, so the tests hold on a loaded machine; a run that finished
before its signal is not counted among the interrupted ones. Most runs are forked from a process
that has imported dask-h2 already (tests/interrupt_zygote.py), so that each costs its work and
not Python's imports of Dask, Zarr and numba; some are whole new processes, imports included.
Before dask-h2's first line runs (the interpreter's own start-up, about 0.1 s) a Ctrl-C is
Python's: it prints Python's KeyboardInterrupt, and nothing has been written yet; the moments of
new processes therefore begin after twice the measured time of that start-up.
"""
from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
import pytest
import zarr

from dask_h2.io.convert import simulate_to
from dask_h2 import api
from dask_h2.cli import main
from dask_h2.io.simulate import SimulationDesign
from dask_h2.store import GRM_GROUP, is_complete

pytestmark = pytest.mark.slow
CHUNK = 256
FORKED = {signal.SIGINT: 10, signal.SIGKILL: 10, signal.SIGTERM: 2}  # interrupted runs per command and signal
NEW_PROCESS = {signal.SIGINT: 1, signal.SIGKILL: 1, signal.SIGTERM: 1}
FORKED_SETUP = 0.005  # seconds of a forked child's own setup (its handler, stderr, the call): no signal then
QUIET_EXIT = {signal.SIGINT: ({130, -signal.SIGINT}, "dask-h2: interrupted"),
              signal.SIGTERM: ({143, -signal.SIGTERM}, "dask-h2: interrupted"),
              signal.SIGKILL: ({-signal.SIGKILL}, "")}
TIMEOUT = 300  # seconds: generous, for a loaded machine
ZYGOTE = Path(__file__).with_name("interrupt_zygote.py")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("interrupts")
    design = SimulationDesign(n_samples=350, n_markers=12_000, h2=(0.5, 0.2), seed=21)  # 4.2 M genotypes: spooled
    rdata = simulate_to(folder / "in.RData", design, progress=False)
    reference = api.convert(rdata, folder / "reference.zarr", chunk_variants=CHUNK, progress=False)
    plain = folder / "plain.zarr"  # converted, without a GRM: what each grm run starts from
    shutil.copytree(reference, plain)
    api.grm(reference, progress=False)
    return {"folder": folder, "rdata": rdata, "reference": reference, "plain": plain}


def command(*args: object) -> list[str]:
    return ["--quiet", *[str(a) for a in args]]


class Run(Protocol):
    pid: int

    def poll(self) -> int | None: ...

    def finish(self) -> tuple[int, str]: ...


class NewProcess:
    """``python -m dask_h2 ARGV``, with Ctrl-C's default action even where the tests run with SIGINT
    ignored (a background job), as in a terminal."""

    def __init__(self, argv: list[str]):
        self.child = subprocess.Popen([sys.executable, "-m", "dask_h2", *argv], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True,
                                      preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        self.pid = self.child.pid

    def poll(self) -> int | None:
        return self.child.poll()

    def finish(self) -> tuple[int, str]:
        err = self.child.communicate(timeout=TIMEOUT)[1]
        return self.child.returncode, err

    @classmethod
    def measure_startup(cls) -> float:
        """Twice the seconds the interpreter takes to reach dask-h2's entry point (at least 0.5 s:
        the time varies with the machine's load)."""
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", "import dask_h2.interrupts"], check=True)
        return max(2 * (time.monotonic() - started), 0.5)


class Zygote:
    """tests/interrupt_zygote.py: forks a child per command, dask-h2 already imported."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.process = subprocess.Popen([sys.executable, str(ZYGOTE)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def answer(self, timeout: float | None) -> dict | None:
        if timeout is not None and not select.select([self.process.stdout], [], [], timeout)[0]:
            return None
        line = self.process.stdout.readline()
        assert line, "the zygote ended"
        return json.loads(line)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=TIMEOUT)


class Forked:
    """The command run in a child forked from the :class:`Zygote` (imports paid once)."""

    def __init__(self, zygote: Zygote, argv: list[str]):
        self.zygote, self.stderr, self.code = zygote, zygote.folder / "stderr.txt", None
        zygote.process.stdin.write(json.dumps({"argv": argv, "stderr": str(self.stderr)}) + "\n")
        zygote.process.stdin.flush()
        self.pid = zygote.answer(TIMEOUT)["pid"]

    def poll(self) -> int | None:
        if self.code is None and (answer := self.zygote.answer(0)) is not None:
            self.code = answer["code"]
        return self.code

    def finish(self) -> tuple[int, str]:
        if self.code is None:
            self.code = self.zygote.answer(TIMEOUT)["code"]
        return self.code, self.stderr.read_text()


@pytest.fixture(scope="module")
def zygote(tmp_path_factory) -> Zygote:
    forks = Zygote(tmp_path_factory.mktemp("zygote"))
    yield forks
    forks.close()


def interrupt_at_random(launch: Callable[[], Run], output: Path, signum: int, rng: np.random.Generator,
                        phases: tuple[float, float, float]) -> tuple[int, str] | None:
    """Start a run and send ``signum`` at a random moment: between ``phases[2]`` and ``phases[0]``
    seconds from its start, or within ``phases[1]`` seconds of ``output`` appearing. None if the
    run finished first."""
    run = launch()
    from_output = rng.random() < 0.5
    deadline = time.monotonic() + TIMEOUT
    if from_output:
        while not output.exists() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
    time.sleep(rng.uniform(0.0, phases[1]) if from_output else rng.uniform(phases[2], max(phases[2], phases[0])))
    if run.poll() is None:
        with contextlib.suppress(ProcessLookupError):  # it ended (and was reaped) since the poll
            os.kill(run.pid, signum)
    code, err = run.finish()
    return None if code == 0 else (code, err)


def measured_phases(launch: Callable[[], Run], output: Path, reset: Callable[[], None], startup: float,
                    finished: Callable[[], bool]) -> tuple[float, float, float]:
    """(seconds from start to the work's end, seconds from ``output`` appearing to the work's end)
    of an uninterrupted run (the second of two: the first loads what later ones find loaded), the
    work's end being when it is ``finished`` (else when the process ends), and ``startup``, the
    seconds before which no signal is sent."""
    for _ in range(2):
        reset()
        started = time.monotonic()
        run = launch()
        appeared = ended = None
        while run.poll() is None:
            if appeared is None and output.exists():
                appeared = time.monotonic()
            if ended is None and finished():
                ended = time.monotonic()
            time.sleep(0.002)
        code, err = run.finish()
        assert code == 0, err
        ended = ended or time.monotonic()
    return ended - started, ended - (appeared or started), startup


def check_interrupts(launch: Callable[[], Run], counts: dict[int, int], startup: float, output: Path,
                     reset: Callable[[], None], rerun: Callable[[], None], check_result: Callable[[], None],
                     seed: int, finished: Callable[[], bool] = lambda: False,
                     check_finished: Callable[[], None] | None = None) -> None:
    """Interrupt runs ``counts[signal]`` times per signal, each from the state ``reset`` makes; after
    each, ``rerun`` (the plain command) must finish and ``check_result`` must pass. A run whose work
    was ``finished`` when the signal came (during its exit) is not counted; its result must pass
    ``check_finished`` (default ``check_result``)."""
    rng = np.random.default_rng(seed)
    phases = measured_phases(launch, output, reset, startup, finished)
    done = {}
    for signum, wanted in counts.items():
        interrupted = 0
        for _ in range(4 * wanted + 4):
            if interrupted == wanted:
                break
            reset()
            result = interrupt_at_random(launch, output, signum, rng, phases)
            if result is None:
                continue
            codes, said = QUIET_EXIT[signum]
            assert result[0] in codes and result[1].strip() in (said, ""), \
                f"{signal.Signals(signum).name}: exit {result[0]}, stderr {result[1]!r}"
            if finished():
                (check_finished or check_result)()
                continue
            rerun()
            check_result()
            interrupted += 1
        done[signum] = interrupted
    assert done == counts, f"interrupted runs by signal: {done}"


def assert_same_store(store: Path, reference: Path, arrays: tuple[str, ...]) -> None:
    a, b = zarr.open_group(store, mode="r"), zarr.open_group(reference, mode="r")
    assert is_complete(store)
    for name in arrays:
        np.testing.assert_array_equal(a[name][:], b[name][:], err_msg=name)


def both_ways(zygote: Zygote, argv: list[str]) -> list[tuple[Callable[[], Run], dict[int, int], float]]:
    """(launcher, interrupted runs per signal, start-up) for forked runs and for new processes."""
    return [(lambda: Forked(zygote, argv), FORKED, FORKED_SETUP),
            (lambda: NewProcess(argv), NEW_PROCESS, NewProcess.measure_startup())]


def test_convert_interrupted_at_random_moments_resumes_to_the_same_store(inputs, zygote, tmp_path, capsys):
    store = tmp_path / "out.zarr"
    argv = command("convert", inputs["rdata"], store, "--chunk", CHUNK)

    def reset():
        shutil.rmtree(store, ignore_errors=True)

    def rerun():
        assert main(argv) == 0
        assert capsys.readouterr().err == ""

    def same():
        assert_same_store(
            store, inputs["reference"], ("call_dosage", "traits", "sample_id", "variant_id", "trait_name")
        )
        assert dict(zarr.open_group(store, mode="r").attrs) == dict(
            zarr.open_group(inputs["reference"], mode="r").attrs
        )
        assert not store.with_name("out.zarr.spool").exists()

    for seed, (launch, counts, startup) in enumerate(both_ways(zygote, argv)):
        check_interrupts(launch, counts, startup, store, reset, rerun, same, seed, finished=lambda: is_complete(store))


def test_grm_interrupted_at_random_moments_is_redone_to_the_same_grm(inputs, zygote, tmp_path, capsys):
    store = tmp_path / "g.zarr"
    argv = command("grm", store)

    def reset():
        shutil.rmtree(store, ignore_errors=True)
        shutil.copytree(inputs["plain"], store)

    def rerun():
        assert main(argv) == 0
        assert capsys.readouterr().err == ""

    arrays = ("kinship", "eigenvalues", "sample_index", "variant_allele_frequency")

    def same():
        assert_same_store(
            store, inputs["reference"], tuple(f"{GRM_GROUP}/{name}" for name in (*arrays, "eigenvectors"))
        )
        grm = zarr.open_group(store, mode="r")[GRM_GROUP]
        assert dict(grm.attrs) == dict(zarr.open_group(inputs["reference"], mode="r")[GRM_GROUP].attrs)

    def finished() -> bool:
        group = zarr.open_group(store, mode="r").get(GRM_GROUP) if (store / GRM_GROUP).exists() else None
        return bool(group is not None and group.attrs.get("complete"))  # its folder can precede its metadata

    def same_to_rounding():  # computed by the interrupted process itself, whose BLAS may split the sums otherwise
        grm, reference = zarr.open_group(store, mode="r")[GRM_GROUP], zarr.open_group(inputs["reference"], mode="r")
        for name in arrays:
            np.testing.assert_allclose(grm[name][:], reference[f"{GRM_GROUP}/{name}"][:], rtol=1e-10, atol=1e-12)

    for seed, (launch, counts, startup) in enumerate(both_ways(zygote, argv), start=10):
        check_interrupts(launch, counts, startup, store / GRM_GROUP, reset, rerun, same, seed, finished,
                         same_to_rounding)


def test_run_interrupted_then_rerun_gives_the_uninterrupted_report(inputs, zygote, tmp_path, capsys):
    """`run` (convert, GRM, fit, report) interrupted anywhere, then run again: the report of an
    uninterrupted run, and never a report of this run before it is complete."""
    prefix = tmp_path / "run"
    assert main(["--quiet", "run", str(inputs["rdata"]), str(inputs["folder"] / "whole")]) == 0
    expected = json.loads((inputs["folder"] / "whole.json").read_text())
    argv = command("run", inputs["rdata"], prefix)

    def reset():
        for path in tmp_path.iterdir():
            shutil.rmtree(path) if path.is_dir() else path.unlink()

    def rerun():
        assert main(argv) == 0
        capsys.readouterr()

    def same():
        report = json.loads(prefix.with_name("run.json").read_text())
        assert report.pop("outputs") == [name.replace("whole.", "run.", 1) for name in expected["outputs"]]
        assert report == {name: value for name, value in expected.items() if name != "outputs"}

    counts = {signal.SIGINT: 2, signal.SIGKILL: 2, signal.SIGTERM: 1}
    check_interrupts(lambda: Forked(zygote, argv), counts, 0.0, prefix.with_name("run.zarr"), reset, rerun, same,
                     seed=20, finished=prefix.with_name("run.json").exists)


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


def test_interrupt_while_the_dependencies_load_is_one_line():
    """SIGINT while Dask, Zarr and numba are still being imported: no KeyboardInterrupt traceback."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import dask_h2.interrupts"], check=True)
    startup = time.monotonic() - started
    child = NewProcess(command("grm", "nothing.zarr"))
    time.sleep(2 * startup)  # past the interpreter's start-up, within the imports (done or not, it must be quiet)
    os.kill(child.pid, signal.SIGINT)
    code, err = child.finish()
    assert code in (130, 2, -signal.SIGINT) and "Traceback" not in err and len(err.splitlines()) <= 1, err


def test_mc_reml_interrupted_during_a_reml_iteration_is_one_line(inputs, tmp_path):
    """SIGINT after MC-REML's first iteration (CG solves running): one line, exit 130, no report written."""
    store = shutil.copytree(inputs["plain"], tmp_path / "in.zarr")  # the fit caches its PCs in the store
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "mc"
    child = subprocess.Popen([sys.executable, "-m", "dask_h2", "fit", str(store), "--method", "mc-reml",
                              "--pcs", "2", "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    said = []
    for line in child.stderr:
        said.append(line)
        if "MC-REML" in line and "iteration 1," in line:
            os.kill(child.pid, signal.SIGINT)
            break
    rest = child.communicate(timeout=TIMEOUT)[1]
    assert said and "iteration 1," in said[-1], "".join(said)
    assert child.returncode == 130 and rest.strip() == "dask-h2: interrupted", (child.returncode, rest)
    assert not list(out.parent.iterdir())
