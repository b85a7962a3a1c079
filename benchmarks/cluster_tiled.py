"""Tiled K on a cluster whose workers cannot hold the untiled GRM: peak memory per worker.

Usage: python benchmarks/cluster_tiled.py [--samples 6000] [--markers 20000] [--worker-memory 1GB]
       [--workdir /tmp/dask-h2-cluster-bench]

Starts 2 worker processes of 1 thread with ``--worker-memory`` each (deploy/local-cluster.sh),
lets dask-h2 plan the GRM for them (tiled, since the untiled n × n buffers exceed the
budget), builds K in tiles into a Zarr array and prints, per worker, the RSS before the
job, the peak RSS, and the plan's predicted peak; then the wall time and the largest
difference from the untiled K computed locally (relative to max |K|).
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import dask.array as da
import numpy as np
import psutil
import zarr
from distributed import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from local_cluster import deployed_cluster  # noqa: E402

from cluster_scaling import ensure_store  # noqa: E402
from dask_h2.cluster import using, worker_budget  # noqa: E402
from dask_h2.kinship.grm import kinship  # noqa: E402
from dask_h2.planning import grm_plan  # noqa: E402
from dask_h2.planning import candidate_plans  # noqa: E402
from dask_h2.planning import TilePlan  # noqa: E402
from dask_h2.kinship.tiled import tiled_kinship  # noqa: E402

MIB = 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=6000)
    parser.add_argument("--markers", type=int, default=20000)
    parser.add_argument("--store-chunk", type=int, default=1024)
    parser.add_argument("--worker-memory", default="1GB")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/dask-h2-cluster-bench"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    n = args.samples
    root = zarr.open_group(ensure_store(args.workdir, n, args.markers, args.store_chunk), mode="r+")
    with deployed_cluster(args.workdir / "tiled", workers=2, memory_limit=args.worker_memory) as deployed, \
            Client(deployed.address) as client, using(client):
        budget, _ = worker_budget(client)
        plan = grm_plan(n, n_markers=args.markers)
        assert isinstance(plan, TilePlan), plan
        before = client.run(lambda: psutil.Process().memory_info().rss)
        out = root.create_array("bench_tiled_kinship", shape=(n, n), chunks=(plan.tile, plan.tile), dtype="float64",
                                overwrite=True)
        start = time.perf_counter()
        tiled = tiled_kinship(root["call_dosage"], out, plan=plan).matrix
        wall = time.perf_counter() - start
        peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    untiled_minimum = min(plan.peak_bytes(n, args.markers) for plan in candidate_plans(n, args.markers))
    print(f"{n} samples x {args.markers} markers; workers of {args.worker_memory}: budget {budget / MIB:.0f} MiB "
          f"(memory limit x distributed.worker.memory.target); the untiled GRM needs at least "
          f"{untiled_minimum / MIB:.0f} MiB")
    print(f"tiles of {plan.tile} samples ({-(-n // plan.tile)}^2 tiles, "
          f"{(-(-n // plan.tile)) * (-(-n // plan.tile) + 1) // 2} tasks), chunks of {plan.chunk_markers} markers; "
          f"predicted peak per worker {plan.peak_bytes(n) / MIB:.0f} MiB")
    for address in sorted(peaks):
        print(f"  worker {address}: RSS before {before[address] / MIB:.0f} MiB, peak {peaks[address] / MIB:.0f} MiB, "
              f"job's share {(peaks[address] - before[address]) / MIB:.0f} MiB")
    expected = kinship(da.from_zarr(root["call_dosage"])).matrix
    print(f"wall {wall:.1f} s; max |K_tiled - K_untiled| / max |K| = "
          f"{np.abs(tiled - expected).max() / np.abs(expected).max():.1e}")
    del root["bench_tiled_kinship"]


if __name__ == "__main__":
    main()
