"""How far a command travels through the package: the modules its calls enter, traced as it runs.

Usage: python benchmarks/call_path.py [--workdir /tmp/dask-h2-call-path]

Makes a small data set (a store and a PLINK .bed of 300 samples × 2,000 markers), then runs
``convert``, ``grm``, ``fit`` (REML) and ``fit --method rhe`` in this process with a profiler
hook on every thread, and prints for each: the package's modules that its calls enter (in the
order first entered), the distinct calls from one module into another, and those that go back:
into a module from which a chain of calls leads back to the caller.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import threading
from pathlib import Path

import numpy as np

PACKAGE = Path(__file__).resolve().parents[1] / "dask_h2"


def module_of(frame) -> str | None:
    """The package module (path from the project's root) of the nearest frame of the package, or None."""
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        if PACKAGE in path.parents:
            return str(path.relative_to(PACKAGE.parent))
        frame = frame.f_back
    return None


def traced(run) -> tuple[list[str], set[tuple[str, str]]]:
    """The package modules that ``run()``'s calls enter, in the order first entered, and the calls
    between modules as (caller, callee) pairs."""
    entered: dict[str, None] = {}
    calls: set[tuple[str, str]] = set()
    lock = threading.Lock()

    def hook(frame, event, arg):
        if event != "call":
            return
        callee = module_of(frame)
        if callee is None or Path(frame.f_code.co_filename).name == "<frozen>":
            return
        caller = module_of(frame.f_back)
        with lock:
            entered.setdefault(callee)
            if caller is not None and caller != callee:
                calls.add((caller, callee))

    threading.setprofile(hook)
    sys.setprofile(hook)
    try:
        run()
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    return list(entered), calls


def reaches(calls: set[tuple[str, str]], start: str, goal: str) -> bool:
    """Whether a chain of ``calls`` leads from ``start`` to ``goal``."""
    seen, todo = {start}, [start]
    while todo:
        here = todo.pop()
        for caller, callee in calls:
            if caller == here and callee not in seen:
                if callee == goal:
                    return True
                seen.add(callee)
                todo.append(callee)
    return False


def summary(name: str, entered: list[str], calls: set[tuple[str, str]]) -> str:
    """Modules, calls between them, and the calls back: into a module from which a chain of calls
    leads back to the caller (a cycle: the command goes back into a module it had left)."""
    back = sorted((a, b) for a, b in calls if reaches(calls, b, a))
    shown = "; ".join(f"{a} <-> {b}" for a, b in back if a < b) or "none"
    return (f"{name}: {len(entered)} modules, {len(calls)} module-to-module calls, {len(back)} of them back into a "
            f"module that calls the caller ({shown})\n  " + " > ".join(entered))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/dask-h2-call-path"))
    args = parser.parse_args()
    from bed_reader import to_bed

    from dask_h2.cli import main as cli

    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    rng = np.random.default_rng(1)
    bed = args.workdir / "small.bed"
    to_bed(bed, rng.integers(0, 3, (300, 2000)).astype(np.float32),
           properties={"pheno": rng.standard_normal(300).tolist()})
    store = args.workdir / "sim.zarr"
    assert cli(["--quiet", "simulate", str(store), "--samples", "300", "--markers", "2000"]) == 0
    cli(["--quiet", "fit", str(store), "--method", "rhe", "--pcs", "0", "--out", str(args.workdir / "warm")])  # imports
    commands = {
        "convert": ["convert", str(bed), str(args.workdir / "bed.zarr")],
        "grm": ["grm", str(store)],
        "fit (REML)": ["fit", str(store), "--pcs", "2", "--out", str(args.workdir / "reml")],
        "fit (RHE)": ["fit", str(store), "--method", "rhe", "--pcs", "2", "--out", str(args.workdir / "rhe")],
    }
    for name, argv in commands.items():
        print(summary(name, *traced(lambda: cli(["--quiet", *argv]))))


if __name__ == "__main__":
    main()
