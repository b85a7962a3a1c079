"""Many traits and all their pairs in one pass: the moments fit of 50 traits with every pair (1,225)
against the fit of one trait, on the same store in the same run.

Usage: python benchmarks/pairs_scale.py [--samples 50000] [--markers 20000] [--traits 50] [--pcs 10]
       [--repeats 5] [--workdir /tmp/dask-h2-pairs]

Simulates the store once (``dask_h2.io.convert.simulate_to``, ``--traits`` traits of h² 0.5),
fits once to cache the PCs, then times (wall clock, in this process) ``fit(method="RHE")`` of the
first trait alone, of all traits, and of all traits with ``bivariate="all"``, the three in turn
``--repeats`` times; prints each one's median wall (and range) and the median of the per-round
ratios to the one-trait fit (the issue asks ≤ 1.5× for 50 traits and 1,225 pairs at 50,000 × 20,000). Beside it,
the floor of what more traits cost: the product of the standardized genotypes with the other
traits' columns (float32 GEMM on all cores, timed on one chunk and scaled to all markers), which
the pass cannot avoid since it needs w_mᵀPy for every marker and trait.
"""
from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

import numpy as np
import zarr
from threadpoolctl import threadpool_limits

from dask_h2 import api
from dask_h2.io.convert import simulate_to
from dask_h2.io.simulate import SimulationDesign
from dask_h2.kinship.grm import chunk_marker_table
from dask_h2.kinship.standardize import standardize
from dask_h2.kinship.selection import MarkerQC
from dask_h2.store import write_traits


def timed(store: Path, **options) -> tuple[float, api.FitReport]:
    started = time.perf_counter()
    report = api.fit(store, method="RHE", progress=False, **options)
    return time.perf_counter() - started, report


def extra_columns_floor(store: Path, columns: int) -> float:
    """Seconds of the float32 GEMM W·Y of all markers with ``columns`` more trait columns, on all cores."""
    dosage = zarr.open_group(store, mode="r")["call_dosage"]
    step = dosage.chunks[0]
    chunk = dosage[:step]
    table = chunk_marker_table(chunk, selected=np.ones((step, 1), bool), scale="hwe", qc=MarkerQC())
    w = standardize(chunk, centre=table[:, 2], inverse_scale=table[:, 3])
    y = np.random.default_rng(0).standard_normal((dosage.shape[1], columns), dtype=np.float32)
    with threadpool_limits(os.cpu_count(), "blas"):
        w @ y
        started = time.perf_counter()
        for _ in range(8):
            w @ y
    return (time.perf_counter() - started) / 8 * dosage.shape[0] / step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50_000)
    parser.add_argument("--markers", type=int, default=20_000)
    parser.add_argument("--traits", type=int, default=50)
    parser.add_argument("--pcs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/dask-h2-pairs"))
    args = parser.parse_args()
    store = args.workdir / f"pairs_{args.samples}x{args.markers}x{args.traits}.zarr"
    if not store.exists():
        args.workdir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        simulate_to(store, SimulationDesign(n_samples=args.samples, n_markers=args.markers,
                                            h2=(0.5,) * args.traits, seed=17), progress=False)
        print(f"simulated {args.samples} samples x {args.markers} markers, {args.traits} traits: "
              f"{time.perf_counter() - started:.1f} s")
    root = zarr.open_group(store, mode="r")
    traits, names = root["traits"][:], np.array([str(n) for n in root["trait_name"][:]], dtype=object)
    single = args.workdir / "single.zarr"
    shutil.rmtree(single, ignore_errors=True)
    shutil.copytree(store, single)
    write_traits(zarr.open_group(single, mode="r+"), traits[:, :1], trait_name=names[:1])
    for path in (single, store):  # the PCs, cached in each store, are not timed
        timed(path, pcs=args.pcs)
    walls = []
    for _ in range(args.repeats):  # in turn, so that a drift of the machine's speed touches all three alike
        one, _ = timed(single, pcs=args.pcs)
        many, _ = timed(store, pcs=args.pcs)
        pairs, report = timed(store, pcs=args.pcs, bivariate="all")
        walls.append((one, many, pairs))
    walls = np.array(walls)
    ratios = np.median(walls / walls[:, :1], axis=0)
    print(f"{args.samples} x {args.markers}, {args.pcs} PCs cached, B = 10, 100 blocks "
          f"(wall clock, median of {args.repeats} rounds [min-max]; ratio: median of the rounds' ratios):")
    for label, column in (("1 trait", 0), (f"{args.traits} traits", 1),
                          (f"{args.traits} traits + {len(report.pairs)} pairs", 2)):
        wall = walls[:, column]
        print(f"  {label:<30} {np.median(wall):6.2f} s [{wall.min():.2f}-{wall.max():.2f}]   {ratios[column]:.2f}x")
    floor = extra_columns_floor(store, args.traits - 1)
    extra = np.median(walls[:, 1] - walls[:, 0])
    print(f"  floor of the {args.traits - 1} more traits' products (GEMM, {os.cpu_count()} cores): {floor:.2f} s; "
          f"{args.traits} traits' median extra wall {extra:.2f} s ({extra / floor:.1f}x the floor)")
    rg = np.array([p.rg for p in report.pairs])
    print(f"  rG over the pairs (independent traits): mean {np.nanmean(rg):+.4f}, SD {np.nanstd(rg):.4f}, "
          f"mean SE {np.nanmean([p.rg_se for p in report.pairs]):.4f}")


if __name__ == "__main__":
    main()
