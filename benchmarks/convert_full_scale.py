"""Full-scale conversion benchmark: `dask-h2 convert` of a GWAS.RData against ISA-L decompression alone.

Usage: python benchmarks/convert_full_scale.py [--workdir /tmp/dask-h2-convert-bench] [--rdata GWAS.RData]
       [--samples 5123] [--markers 319147] [--repeats 1]

Makes (with `dask-h2 simulate`: gzip, integer 0/1/2 with 1 % NA, samples × markers, 4
phenotypes) or reuses the RData file, then, each in a fresh child process:
  1. decompression alone: the isal package's igzip reading the whole file into a 1 MiB buffer;
  2. `dask-h2 --quiet convert IN OUT.zarr --overwrite`: wall time, CPU time and peak RSS
     (the child's own rusage from wait4);
  3. decompression again, so that a change of load during the run shows.
Prints each figure, the ratio conversion / decompression (the faster of the two
decompressions) and the targets: peak RSS ≤ 1 GB, ratio ≤ 2.5.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import zarr

DASK_H2 = str(Path(sys.executable).with_name("dask-h2"))  # the command of the environment running this

DECOMPRESS = r"""
import sys
from isal import igzip
buffer = bytearray(1 << 20)
total = 0
with igzip.open(sys.argv[1], "rb") as stream:
    while read := stream.readinto(buffer):
        total += read
print(total)
"""
RSS_TARGET, RATIO_TARGET = 1e9, 2.5


def timed(command: list[str]) -> dict:
    """Run ``command``; its wall time, CPU time and peak RSS (bytes), and its stdout."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    out, err = child.stdout.read(), child.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(command)} failed:\n{err}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "peak_rss": usage.ru_maxrss * 1024, "stdout": out}


def make_rdata(path: Path, samples: int, markers: int) -> dict:
    command = [DASK_H2, "--quiet", "simulate", str(path), "--samples", str(samples), "--markers", str(markers),
               "--h2", "0.5,0.3,0.1,0", "--seed", "1", "--overwrite"]
    print(f"making {path} ({samples} × {markers}) …", flush=True)
    return timed(command)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/dask-h2-convert-bench"))
    parser.add_argument(
        "--rdata", type=Path, help="an existing gzip RData file (default: WORKDIR/GWAS.RData, made if absent)"
    )
    parser.add_argument("--samples", type=int, default=5123)
    parser.add_argument("--markers", type=int, default=319147)
    parser.add_argument("--repeats", type=int, default=1, help="conversions to time (the fastest is reported)")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    rdata = args.rdata or args.workdir / "GWAS.RData"
    results: dict = {"load_average_at_start": os.getloadavg()}
    if not rdata.exists():
        results["simulate"] = {k: v for k, v in make_rdata(rdata, args.samples, args.markers).items() if k != "stdout"}
    store = args.workdir / "GWAS.zarr"
    first = timed([sys.executable, "-c", DECOMPRESS, str(rdata)])
    conversions = [timed([DASK_H2, "--quiet", "convert", str(rdata), str(store), "--overwrite"])
                   for _ in range(args.repeats)]
    second = timed([sys.executable, "-c", DECOMPRESS, str(rdata)])
    convert = min(conversions, key=lambda c: c["wall"])
    decompress_wall = min(first["wall"], second["wall"])
    store_bytes = sum(f.stat().st_size for f in store.rglob("*") if f.is_file())
    shape = zarr.open_group(store, mode="r")["call_dosage"].shape
    results.update(
        rdata=str(rdata), rdata_bytes=rdata.stat().st_size, decompressed_bytes=int(first["stdout"]),
        markers=shape[0], samples=shape[1], store_bytes=store_bytes,
        decompress_wall=[first["wall"], second["wall"]], decompress_cpu=[first["cpu"], second["cpu"]],
        convert_walls=[c["wall"] for c in conversions], convert_wall=convert["wall"], convert_cpu=convert["cpu"],
        convert_peak_rss=convert["peak_rss"], ratio=convert["wall"] / decompress_wall,
        load_average_at_end=os.getloadavg(),
    )
    print(json.dumps(results, indent=1))
    print(f"\n{shape[1]} samples × {shape[0]} markers; RData {results['rdata_bytes'] / 1e9:.2f} GB gzip "
          f"({results['decompressed_bytes'] / 1e9:.2f} GB decompressed), store {store_bytes / 1e9:.2f} GB")
    print(f"ISA-L decompression alone: {first['wall']:.1f} s and {second['wall']:.1f} s "
          f"({results['decompressed_bytes'] / 1e9 / decompress_wall:.2f} GB/s at best)")
    print(f"dask-h2 convert:           {convert['wall']:.1f} s wall, {convert['cpu']:.1f} s CPU, "
          f"peak RSS {convert['peak_rss'] / 1e9:.2f} GB (target ≤ {RSS_TARGET / 1e9:.0f} GB)")
    print(f"ratio convert / decompress: {results['ratio']:.2f} (target ≤ {RATIO_TARGET})")
    print(
        f"cores: {os.cpu_count()}; load average {results['load_average_at_start']} → {results['load_average_at_end']}"
    )


if __name__ == "__main__":
    main()
