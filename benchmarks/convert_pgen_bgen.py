"""`dask-h2 convert` of a PLINK 2 .pgen and of a BGEN file beside plink2 converting the same file to .bed.

Usage: python benchmarks/convert_pgen_bgen.py [--workdir /tmp/dask-h2-pgen-bgen] [--samples 20000]
       [--markers 50000] [--threads 2] [--dosages]

Makes (or reuses) `plink2 --dummy SAMPLES MARKERS --seed 1 --make-pgen` (hard calls) and its
`--export bgen-1.2 bits=8 ref-first` (8-bit layout 2, zlib; no .bgi index); with --dosages also
`--dummy … 0.01 dosage-freq=0.5` (half the calls dosages, 1 % missing) as BGEN. For each input,
in fresh child processes one after the other:
  1. `plink2 --pfile IN | --bgen IN.bgen ref-first --sample IN.sample  --make-bed --threads T`;
  2. `dask-h2 --quiet convert IN OUT.zarr --overwrite` (T = the cores it uses: one per core);
  3. the same conversion by `dask_h2.api.convert` in a Python process, timed inside it after
     the imports (the command's start-up, mostly importing dask, distributed and scipy, aside);
and prints wall time, CPU time, peak RSS of the whole process tree (its RSS summed over the
process and its descendants every 20 ms, and the largest single process's ru_maxrss from
wait4, whichever is larger) and the ratios dask-h2 / plink2. Targets: wall ≤ 1.0× plink2's,
peak RSS ≤ 1 GB (20,000 samples).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import zarr

DASK_H2 = str(Path(sys.executable).with_name("dask-h2"))  # the command of the environment running this
IN_PROCESS = r"""
import sys, time
from dask_h2.api import convert
start = time.perf_counter()
convert(sys.argv[1], sys.argv[2], overwrite=True, progress=False)
print(time.perf_counter() - start)
"""
WALL_TARGET, RSS_TARGET = 1.0, 1e9


def tree_rss(process: psutil.Process) -> int:
    """RSS (bytes) summed over ``process`` and its descendants, 0 once it is gone."""
    total = 0
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:  # ended
        return 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.Error:  # ended between listing and reading
            pass
    return total


def timed(command: list[str]) -> dict:
    """Run ``command``: wall and CPU time (s, the tree's) and peak RSS (bytes) of its process tree."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak, done = [0], threading.Event()

    def sample() -> None:
        try:
            process = psutil.Process(child.pid)
        except psutil.Error:  # ended already: its ru_maxrss below is the figure
            return
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss(process))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    out, err = child.stdout.read().decode(), child.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(command)} failed:\n{err[-3000:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "peak_rss": max(peak[0], usage.ru_maxrss * 1024),
            "stdout": out}


def make_data(folder: Path, samples: int, markers: int, dosages: bool, threads: int) -> list[Path]:
    """The .pgen and BGEN inputs (made with plink2 unless present)."""
    inputs = []
    sets = [("hc", ["--seed", "1"])] + ([("dos", ["0.01", "dosage-freq=0.5", "--seed", "2"])] if dosages else [])
    for name, options in sets:
        pgen, bgen = folder / f"{name}.pgen", folder / f"{name}.bgen"
        if not bgen.exists():
            print(f"making {pgen.name} and {bgen.name} ({samples} × {markers}) with plink2 …", flush=True)
            plink2 = ["plink2", "--threads", str(threads)]
            subprocess.run([*plink2, "--dummy", str(samples), str(markers), *options, "--make-pgen",
                            "--out", str(folder / name)], check=True, capture_output=True)
            subprocess.run([*plink2, "--pfile", str(folder / name), "--export", "bgen-1.2", "bits=8", "ref-first",
                            "--out", str(folder / name)], check=True, capture_output=True)
        inputs += [pgen, bgen] if name == "hc" else [bgen]
    return inputs


def plink2_command(source: Path, out: Path, threads: int) -> list[str]:
    reading = ["--pfile", str(source.with_suffix(""))] if source.suffix == ".pgen" else \
        ["--bgen", str(source), "ref-first", "--sample", str(source.with_suffix(".sample"))]
    return ["plink2", *reading, "--make-bed", "--threads", str(threads), "--out", str(out)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/dask-h2-pgen-bgen"))
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--markers", type=int, default=50_000)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="plink2 --threads (default: cores)")
    parser.add_argument("--dosages", action="store_true", help="also a BGEN with dosages and missing calls")
    args = parser.parse_args()
    folder = args.workdir / f"{args.samples}x{args.markers}"
    folder.mkdir(parents=True, exist_ok=True)
    inputs = make_data(folder, args.samples, args.markers, args.dosages, args.threads)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; dask-h2 uses one thread per core, "
          f"plink2 --threads {args.threads}")
    print(f"{'input':<10} {'tool':<8} {'wall s':>7} {'CPU s':>7} {'peak RSS':>10}")
    verdicts = []
    for source in inputs:
        peer = timed(plink2_command(source, folder / f"plink2_{source.stem}_{source.suffix[1:]}", args.threads))
        store = folder / f"{source.stem}_{source.suffix[1:]}.zarr"
        ours = timed([DASK_H2, "--quiet", "convert", str(source), str(store), "--overwrite"])
        inside = float(timed([sys.executable, "-c", IN_PROCESS, str(source), str(store)])["stdout"])
        root = zarr.open_group(store, mode="r")
        assert root["call_dosage"].shape == (args.markers, args.samples)
        for tool, figures in (("plink2", peer), ("dask-h2", ours)):
            print(f"{source.name:<10} {tool:<8} {figures['wall']:7.1f} {figures['cpu']:7.1f} "
                  f"{figures['peak_rss'] / 2**20:7.0f} MiB", flush=True)
        print(f"{source.name:<10} {'(inside)':<8} {inside:7.1f}   api.convert() alone, after the imports", flush=True)
        ratio = ours["wall"] / peer["wall"]
        verdicts.append(f"{source.name}: wall ratio dask-h2/plink2 {ratio:.2f} (target <= {WALL_TARGET}: "
                        f"{'met' if ratio <= WALL_TARGET else 'NOT met'}; api.convert() alone "
                        f"{inside / peer['wall']:.2f}), peak RSS {ours['peak_rss'] / 1e9:.2f} GB "
                        f"(target <= {RSS_TARGET / 1e9:.0f} GB: "
                        f"{'met' if ours['peak_rss'] <= RSS_TARGET else 'NOT met'}"
                        f"; plink2 {peer['peak_rss'] / 1e9:.2f} GB)")
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
