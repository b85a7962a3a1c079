"""Statistical behaviour of the moments estimator, simulated, beside exact REML on the same data sets.

Usage: python benchmarks/rhe_calibration.py [--replicates 100] [--samples 5000] [--markers 20000]
       [--workdir /tmp/dask-h2-rhe-calibration] [--pcs 10]

Each replicate simulates a fresh data set (`dask_h2.simulate`: 3 subpopulations, F_ST 0.05,
1 % missing calls, causal markers as GCTA's --simu-qt) with three traits of true h² = 0.1,
0.3 and 0.6, then fits every trait by randomized Haseman–Elston (B = 10 probes, 100
jackknife blocks, its own probe seed per replicate) and by exact REML (GRM, eigendecomposition),
both with 10 PCs as fixed effects. Results are appended to ``WORKDIR/results.jsonl`` as each
replicate finishes, so an interrupted run resumes where it stopped.

Prints, per true h²: the mean ĥ² (RHE) with its Monte-Carlo SE and its distance to the truth in
MC SEs, the empirical SD of ĥ², the mean jackknife SE and their ratio, and the same-data-set
ratio SD(RHE) / SD(REML).
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

from dask_h2 import api
from dask_h2.rhe import RHESettings, fit_rhe
from dask_h2.simulate import SimulationDesign

TRUTH = (0.1, 0.3, 0.6)


def replicate(index: int, args: argparse.Namespace) -> dict:
    store = args.workdir / f"replicate{index}.zarr"
    design = SimulationDesign(args.samples, args.markers, TRUTH, seed=10_000 + index)
    api.simulate_to(store, design, overwrite=True, progress=False)
    start = time.perf_counter()
    moments = fit_rhe(store, rhe=RHESettings(seed=index + 1), pcs=args.pcs, progress=False)
    rhe_wall = time.perf_counter() - start
    start = time.perf_counter()
    reml = api.fit(store, "REML", pcs=args.pcs, progress=False)
    reml_wall = time.perf_counter() - start
    shutil.rmtree(store)
    return {"replicate": index, "rhe_h2": [t.h2 for t in moments.traits], "rhe_se": [t.h2_se for t in moments.traits],
            "reml_h2": [t.h2 for t in reml.traits], "reml_se": [t.h2_se for t in reml.traits],
            "rhe_wall": rhe_wall, "reml_wall": reml_wall}


def summary(rows: list[dict]) -> str:
    rhe, se = np.array([r["rhe_h2"] for r in rows]), np.array([r["rhe_se"] for r in rows])
    reml = np.array([r["reml_h2"] for r in rows])
    lines = [f"{len(rows)} replicates; RHE {np.median([r['rhe_wall'] for r in rows]):.1f} s and REML (GRM + eigh + fit) "
             f"{np.median([r['reml_wall'] for r in rows]):.1f} s per data set (median)",
             f"{'true h2':>8}{'mean RHE':>10}{'MC SE':>8}{'|bias|/MCSE':>12}{'SD RHE':>9}{'mean SE':>9}{'SE/SD':>7}"
             f"{'mean REML':>10}{'SD REML':>9}{'SD RHE/REML':>12}"]
    for j, truth in enumerate(TRUTH):
        sd, sd_reml = rhe[:, j].std(ddof=1), reml[:, j].std(ddof=1)
        mc = sd / np.sqrt(len(rows))
        lines.append(f"{truth:>8.2f}{rhe[:, j].mean():>10.4f}{mc:>8.4f}{abs(rhe[:, j].mean() - truth) / mc:>12.2f}"
                     f"{sd:>9.4f}{se[:, j].mean():>9.4f}{se[:, j].mean() / sd:>7.3f}{reml[:, j].mean():>10.4f}"
                     f"{sd_reml:>9.4f}{sd / sd_reml:>12.3f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicates", type=int, default=100)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--markers", type=int, default=20000)
    parser.add_argument("--pcs", type=int, default=10)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/dask-h2-rhe-calibration"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = args.workdir / f"results_{args.samples}x{args.markers}_pcs{args.pcs}.jsonl"
    rows = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    done = {r["replicate"] for r in rows}
    for index in range(args.replicates):
        if index in done:
            continue
        row = replicate(index, args)
        with results.open("a") as stream:
            stream.write(json.dumps(row) + "\n")
        rows.append(row)
        if len(rows) % 10 == 0:
            print(summary(rows), flush=True)
    print(summary([r for r in rows if r["replicate"] < args.replicates]))


if __name__ == "__main__":
    main()
