"""The moments path at biobank scale on this machine, against a one-pass limit timed in the same run.

Usage: python benchmarks/rhe_scale.py [--store S.zarr | --samples 100000 --markers 100000]
       [--workdir /tmp/dask-h2-rhe-scale] [--skip-cluster]

Makes (``dask-h2 simulate``, straight to Zarr) or reuses a store, then, each in a fresh process
measured for wall time and peak RSS:

1. the one-pass limit: reading and decompressing every ``call_dosage`` chunk once on all cores,
   plus the two GEMMs of the standardized genotypes with B = 10 vectors over all markers that
   every randomized HE needs, Wᵀz and W·u (float32, BLAS on all cores, each in the faster of its
   two orientations, timed on one chunk and scaled to M);
2. ``dask-h2 fit --method rhe`` with 10 PCs, B = 10, 100 jackknife blocks and 1 component, from a
   cold store (marker table and PCs computed: all passes), then again warm (PCs cached);
3. the same with 8 MAF components (warm);
4. unless --skip-cluster, the 1-component fit (warm) on a local Dask cluster of 1 and of 2 worker
   processes with 1 thread each, the workers having imported dask-h2 (as on any cluster that has
   run it once): median wall of ``--cluster-rounds`` runs, worker peak RSS, the largest relative
   difference of any estimate from the local run, the speed-up of 2 workers over 1, and for 2
   workers the median ratio to the local run on 2 threads timed in turn with it;
5. the model for n = 500,000 × M = 500,000 with 8 components on W workers, from the CPU time per
   genotype of the warm 8-component run and the memory model (dask_h2.planning.moments_peak_bytes).

Prints each run's passes over the genotypes and its ratio to the one-pass limit (target: the whole
estimate within 3x, peak RSS within 2 GB).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from local_cluster import deployed_cluster  # noqa: E402
from measure import gib, measured  # noqa: E402

DASK_H2 = str(Path(sys.executable).with_name("dask-h2"))
EIGHT_MAF_BINS = "maf:0,0.05,0.1,0.15,0.2,0.25,0.3,0.4,0.5"

LIMIT = r"""
import json, os, sys, time
from concurrent.futures import ThreadPoolExecutor
import numpy as np, zarr
from threadpoolctl import threadpool_limits
from dask_h2.kinship.grm import chunk_marker_table
from dask_h2.kinship.standardize import standardize
from dask_h2.kinship.selection import MarkerQC
dosage = zarr.open_group(sys.argv[1], mode="r")["call_dosage"]
step = dosage.chunks[0]
bounds = [(a, min(a + step, dosage.shape[0])) for a in range(0, dosage.shape[0], step)]
start = time.perf_counter()
with ThreadPoolExecutor(os.cpu_count()) as pool:
    list(pool.map(lambda b: dosage[b[0]:b[1]].shape, bounds))
decode = time.perf_counter() - start
chunk = dosage[:step]
table = chunk_marker_table(chunk, selected=np.ones((step, 1), bool), scale="hwe", qc=MarkerQC())
w = standardize(chunk, centre=table[:, 2], inverse_scale=table[:, 3])
z = np.random.default_rng(0).standard_normal((dosage.shape[1], 10), dtype=np.float32)
u = np.random.default_rng(1).standard_normal((step, 10), dtype=np.float32)
def seconds(product, repeats=8):
    product()
    start = time.perf_counter()
    for _ in range(repeats):
        product()
    return (time.perf_counter() - start) / repeats * dosage.shape[0] / step
with threadpool_limits(os.cpu_count(), "blas"):  # the two products every randomized HE needs, each in
    gemm = (min(seconds(lambda: w @ z), seconds(lambda: z.T @ w.T))  # its faster orientation: W'z
            + min(seconds(lambda: w.T @ u), seconds(lambda: u.T @ w)))  # and W u
print(json.dumps({"decode": decode, "gemm": gemm}))
"""


def worker_peaks(address: str) -> list[int]:
    from distributed import Client

    with Client(address) as client:
        return list(client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024).values())


def estimates(report: Path) -> list[float]:
    values = []
    for trait in json.loads(report.read_text())["traits"]:
        values += [trait["h2"], trait["sigma_e2"]] + [c["sigma2"] for c in trait["components"]]
    return values


def print_model(cpu_per_genotype: float, samples: int = 500_000, markers: int = 500_000, components: int = 8,
                probes: int = 10, blocks: int = 100, traits: int = 1, pcs: int = 10) -> None:
    """Wall time and memory of a moments fit at biobank scale on W workers of 1 thread, from the
    measured CPU time per genotype of one pass (which includes this run's scratch pass)."""
    from dask_h2.planning import moments_peak_bytes, plan_moments

    right = probes + traits + 1 + pcs
    scratch = 4 * blocks * components * samples * probes
    sketch_fraction = 2 * min(1.0, 50_000 / markers)  # default --pc-passes 2 over --pc-markers 50,000
    print(f"\nmodel for n = {samples:,} x M = {markers:,}, {components} components, B = {probes}, J = {blocks}: "
          f"{cpu_per_genotype * 1e9:.2f} ns of CPU per genotype and pass (measured above); scratch "
          f"{gib(scratch)} (4·J·K·n·B bytes), read once by the block pass")
    for workers in (4, 16, 64):
        plan = plan_moments(
            samples, markers, sum_columns=components * probes, right_columns=right, memory_limit=8 * 2**30, threads=1
        )
        peak = moments_peak_bytes(
            plan, n_samples=samples, n_markers=markers, sum_columns=components * probes, right_columns=right
        )
        one = samples * markers * cpu_per_genotype / workers
        print(f"  {workers:3d} workers x 1 thread: one pass {one / 60:6.1f} min, first fit with PCs "
              f"{one * (1 + sketch_fraction) / 60:6.1f} min; per worker {gib(peak)} (chunks of "
              f"{plan.chunk_markers} markers, fan-in {plan.split_every})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path)
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--markers", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/dask-h2-rhe-scale"))
    parser.add_argument("--skip-cluster", action="store_true")
    parser.add_argument("--cluster-rounds", type=int, default=3)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    store = args.store or args.workdir / f"sim_{args.samples}x{args.markers}.zarr"
    if not store.exists():
        print(f"simulating {store} ...", flush=True)
        subprocess.run([DASK_H2, "--quiet", "simulate", str(store), "--samples", str(args.samples), "--markers",
                        str(args.markers), "--h2", "0.5,0.2", "--seed", "4"], check=True)
    limit = json.loads(subprocess.run([sys.executable, "-c", LIMIT, str(store)], check=True, capture_output=True,
                                      text=True).stdout)
    one_pass = limit["decode"] + limit["gemm"]
    print(f"one-pass limit: decompress every chunk {limit['decode']:.1f} s + GEMMs with 10 vectors over all "
          f"markers, both ways, {limit['gemm']:.1f} s = {one_pass:.1f} s")
    subprocess.run([sys.executable, "-c", f"import zarr; g = zarr.open_group({str(store)!r}, mode='r+'); "
                    "'rhe' in g and g.__delitem__('rhe')"], check=True)  # a cold start: no cached PCs
    base = [DASK_H2, "--quiet", "fit", str(store), "--method", "rhe", "--pcs", "10", "--random-vectors", "10",
            "--jackknife-blocks", "100"]
    runs = {}
    for name, extra in (("1 component, cold", []), ("1 component, warm", []),
                        ("8 MAF components, warm", ["--partition", EIGHT_MAF_BINS])):
        out = args.workdir / name.replace(" ", "_").replace(",", "")
        runs[name] = {**measured([*base, *extra, "--out", str(out)]), "out": out.with_suffix(".json")}
        report = json.loads(runs[name]["out"].read_text())
        sketches = report["pc_sketch_passes"]
        passes = f"{report['passes_over_genotypes']} passes" + (
            f" + {sketches} sketch passes over {report['pc_markers']} markers" if sketches else "")
        r = runs[name]
        print(f"{name:24}: wall {r['wall']:7.1f} s, CPU {r['cpu']:7.1f} s, peak RSS {gib(r['peak_rss'])}, "
              f"{passes}; ratio to the one-pass limit {r['wall'] / one_pass:.2f}", flush=True)
    print_model(runs["8 MAF components, warm"]["cpu"] / (args.samples * args.markers))
    if args.skip_cluster:
        return
    local = estimates(runs["1 component, warm"]["out"])
    walls = {}
    for workers in (1, 2):
        with deployed_cluster(args.workdir / f"cluster{workers}", workers=workers, threads=1) as deployed:
            warm_workers(deployed.address)
            out = args.workdir / f"cluster_{workers}.json"
            rounds = []
            for _ in range(args.cluster_rounds):  # in turn with the local run: a drift of speed touches both
                cluster = measured([*base, "--scheduler", deployed.address, "--out", str(out.with_suffix(""))])
                alone = measured([*base, "--out", str(args.workdir / "local_round")]) if workers == 2 else None
                rounds.append((cluster["wall"], alone["wall"] if alone else np.nan))
            peaks = worker_peaks(deployed.address)
        rounds = np.array(rounds)
        walls[workers] = float(np.median(rounds[:, 0]))
        difference = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(estimates(out), local))
        print(f"{workers} worker process(es) x 1 thread: wall {walls[workers]:.1f} s (median of {len(rounds)}: "
              f"{', '.join(f'{w:.1f}' for w in rounds[:, 0])}), worker peak RSS {', '.join(gib(p) for p in peaks)}; "
              f"largest relative difference from the local run {difference:.1e}")
        if workers == 2:
            ratio = np.median(rounds[:, 0] / rounds[:, 1])
            print(f"  2 local threads in the same rounds: {', '.join(f'{w:.1f}' for w in rounds[:, 1])} s; "
                  f"2 worker processes / 2 threads: {ratio:.2f} (median of the rounds' ratios)")
    print(f"speed-up of 2 workers over 1: {walls[1] / walls[2]:.2f}")


def warm_workers(address: str) -> None:
    """Import the moments path on every worker, as a cluster that has run anything of dask-h2 has: the
    fits timed then compare with a local process that imports it too (the CLI's own start)."""
    from distributed import Client

    with Client(address) as client:
        client.run(lambda: __import__("dask_h2.moments.fit").moments.fit.fit_store and None)

if __name__ == "__main__":
    main()
