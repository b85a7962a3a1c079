"""Cluster scaling of the GRM: the same job on 1 and 2 worker processes of 1 thread each.

Usage: python benchmarks/cluster_scaling.py [--samples 2000] [--markers 50000] [--store-chunk 2048]
       [--workdir /tmp/dask-h2-cluster-bench] [--repeats 2]

Makes (or reuses) a synthetic store, then times K (:func:`dask_h2.kinship.grm.kinship`, one task
graph: the plan dask-h2 picks for 2 workers) locally (1 Dask thread, BLAS on all cores:
the laptop default) and on clusters started by deploy/local-cluster.sh: 1 and 2 worker
processes of 1 thread with BLAS on 1 thread (distributed's default), and 1 worker with
BLAS on 2 threads. Prints the best wall time of ``--repeats``, the speed-up over 1
worker, each worker's peak RSS and the largest difference of K from the local run
(relative to max |K|).
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import dask.array as da
import numpy as np
import zarr
from distributed import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from local_cluster import deployed_cluster  # noqa: E402

from dask_h2.cluster import using  # noqa: E402
from dask_h2.io.sources import write_store  # noqa: E402
from dask_h2.kinship.grm import kinship  # noqa: E402
from dask_h2.planning import grm_plan  # noqa: E402
from dask_h2.planning import ComputePlan  # noqa: E402
from dask_h2.io.simulate import SimulationDesign, simulate  # noqa: E402
from dask_h2.store import is_complete  # noqa: E402


def ensure_store(workdir: Path, samples: int, markers: int, chunk: int) -> Path:
    store = workdir / f"synthetic_{samples}x{markers}_c{chunk}.zarr"
    if not is_complete(store):
        print(f"simulating {samples} x {markers} into {store} ...", flush=True)
        write_store(
            simulate(SimulationDesign(n_samples=samples, n_markers=markers, h2=(0.5,), seed=1)),
            store,
            chunk_variants=chunk,
            overwrite=True,
            progress=False,
        )
    return store


def best_wall(dosage: da.Array, plan: ComputePlan, repeats: int) -> tuple[float, np.ndarray]:
    walls = []
    for _ in range(repeats):
        start = time.perf_counter()
        matrix = kinship(dosage, plan=plan).matrix
        walls.append(time.perf_counter() - start)
    return min(walls), matrix


def worker_peaks(client: Client) -> list[float]:
    """Peak RSS (MiB) of every worker process since it started."""
    peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return sorted(peaks.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--markers", type=int, default=50000)
    parser.add_argument("--store-chunk", type=int, default=2048)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/dask-h2-cluster-bench"))
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    store = ensure_store(args.workdir, args.samples, args.markers, args.store_chunk)
    dosage = da.from_zarr(zarr.open_group(store, mode="r")["call_dosage"])

    rows = {}  # label: (wall, peaks, matrix)
    plan = None
    for workers, blas in [(2, 1), (1, 1), (1, 2)]:  # 2 workers first: their plan is the job's
        with deployed_cluster(args.workdir / f"cluster-{workers}x{blas}", workers=workers, blas_threads=blas) \
                as deployed, Client(deployed.address) as client, using(client):
            plan = plan or grm_plan(args.samples, n_markers=args.markers)
            wall, matrix = best_wall(dosage, plan, args.repeats)
            rows[f"cluster: {workers} worker x 1 thread, BLAS {blas}"] = wall, worker_peaks(client), matrix
    local_wall, local_k = best_wall(
        dosage,
        ComputePlan(chunk_markers=plan.chunk_markers, split_every=plan.split_every, dask_threads=1, blas_threads=2),
        args.repeats,
    )
    chunk = max(args.store_chunk, plan.chunk_markers // args.store_chunk * args.store_chunk)  # as kinship merges
    print(f"{args.samples} samples x {args.markers} markers; chunks of {chunk} markers "
          f"({-(-args.markers // chunk)} tasks), fan-in {plan.split_every}; best of {args.repeats}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'where':<36} {'wall s':>7} {'speed-up':>8} {'peak RSS/worker MiB':>20} {'max|dK|/max|K|':>15}")
    print(f"{'local: 1 Dask thread x BLAS 2':<36} {local_wall:7.2f} {'':>8} {'':>20} {0.0:15.1e}")
    single = rows["cluster: 1 worker x 1 thread, BLAS 1"][0]
    scale = np.abs(local_k).max()
    for label, (wall, peaks, matrix) in rows.items():
        print(f"{label:<36} {wall:7.2f} {single / wall:8.2f} {', '.join(f'{p:.0f}' for p in peaks):>20} "
              f"{np.abs(matrix - local_k).max() / scale:15.1e}")


if __name__ == "__main__":
    main()
