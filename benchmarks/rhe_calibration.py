"""Statistical behaviour of the moments estimator, simulated, beside exact REML on the same data sets.

Usage: python benchmarks/rhe_calibration.py [--replicates 100] [--samples 5000] [--markers 20000]
       [--workdir /tmp/dask-h2-rhe-calibration] [--pcs 10] [--blocks 100,1000,half] [--no-reml]
       [--causal N]

Each replicate simulates a fresh data set (`dask_h2.io.simulate`: 3 subpopulations, F_ST 0.05,
1 % missing calls, causal markers as GCTA's --simu-qt: ``--causal`` of them, default a quarter;
0 = every marker, the model's own assumption) with three traits of true h² = 0.1,
0.3 and 0.6, then fits every trait by randomized Haseman–Elston (B = 10 probes, its own probe
seed per replicate) once for each number of jackknife blocks in ``--blocks`` (``half``: M/2
blocks of two markers), and by exact REML (GRM, eigendecomposition) unless ``--no-reml``, all with
10 PCs as fixed effects. Results are appended to ``WORKDIR/results_*.jsonl`` as each replicate
finishes, so an interrupted run resumes where it stopped.

Prints, per true h²: the mean ĥ² (RHE) with its Monte-Carlo SE and its distance to the truth in
MC SEs, the empirical SD of ĥ², the mean jackknife SE and their ratio, and the same-data-set
ratio SD(RHE) / SD(REML); then, for each number of blocks, SE / SD of every reported quantity
(h², σ²g, σ²e, Vp).
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

from dask_h2.io.convert import simulate_to
from dask_h2 import api
from dask_h2.moments.settings import MomentsSettings
from dask_h2.io.simulate import SimulationDesign

TRUTH = (0.1, 0.3, 0.6)


QUANTITIES = ("h2", "sigma_g2", "sigma_e2", "vp")


def block_counts(spec: str, n_markers: int) -> list[int]:
    """The numbers of jackknife blocks of ``--blocks`` (``half`` = M/2)."""
    return [n_markers // 2 if item == "half" else int(item) for item in spec.split(",")]


def replicate(index: int, args: argparse.Namespace) -> dict:
    store = args.workdir / f"replicate{index}.zarr"
    design = SimulationDesign(n_samples=args.samples, n_markers=args.markers, h2=TRUTH, seed=10_000 + index,
                              n_causal=args.markers if args.causal == 0 else args.causal)
    simulate_to(store, design, overwrite=True, progress=False)
    row = {"replicate": index}
    for blocks in block_counts(args.blocks, args.markers):
        start = time.perf_counter()
        moments = api.fit(store, method="RHE", moments=MomentsSettings(seed=index + 1, n_blocks=blocks), pcs=args.pcs,
                          progress=False)
        row[f"rhe_wall_{blocks}"] = time.perf_counter() - start
        for name in QUANTITIES:
            row[f"{name}_{blocks}"] = [getattr(t, name) for t in moments.traits]
            row[f"{name}_se_{blocks}"] = [getattr(t, f"{name}_se") for t in moments.traits]
    if args.reml:
        start = time.perf_counter()
        reml = api.fit(store, method="REML", pcs=args.pcs, progress=False)
        row["reml_wall"] = time.perf_counter() - start
        row["reml_h2"], row["reml_se"] = [t.h2 for t in reml.traits], [t.h2_se for t in reml.traits]
    shutil.rmtree(store)
    return row


def summary(rows: list[dict], args: argparse.Namespace) -> str:
    counts = block_counts(args.blocks, args.markers)
    first = counts[0]
    rhe, se = np.array([r[f"h2_{first}"] for r in rows]), np.array([r[f"h2_se_{first}"] for r in rows])
    reml = np.array([r["reml_h2"] for r in rows]) if args.reml else None
    timing = f"RHE ({first} blocks) {np.median([r[f'rhe_wall_{first}'] for r in rows]):.1f} s"
    if args.reml:
        timing += f" and REML (GRM + eigh + fit) {np.median([r['reml_wall'] for r in rows]):.1f} s"
    lines = [f"{len(rows)} replicates; {timing} per data set (median)",
             f"{'true h2':>8}{'mean RHE':>10}{'MC SE':>8}{'|bias|/MCSE':>12}{'SD RHE':>9}{'mean SE':>9}{'SE/SD':>7}"
             + (f"{'mean REML':>10}{'SD REML':>9}{'SD RHE/REML':>12}" if args.reml else "")]
    for j, truth in enumerate(TRUTH):
        sd = rhe[:, j].std(ddof=1)
        mc = sd / np.sqrt(len(rows))
        line = (f"{truth:>8.2f}{rhe[:, j].mean():>10.4f}{mc:>8.4f}{abs(rhe[:, j].mean() - truth) / mc:>12.2f}"
                f"{sd:>9.4f}{se[:, j].mean():>9.4f}{se[:, j].mean() / sd:>7.3f}")
        if reml is not None:
            sd_reml = reml[:, j].std(ddof=1)
            line += f"{reml[:, j].mean():>10.4f}{sd_reml:>9.4f}{sd / sd_reml:>12.3f}"
        lines.append(line)
    lines.append("SE / SD (mean jackknife SE over the empirical SD) by blocks, quantity and true h2:")
    lines.append(f"{'blocks':>8}{'quantity':>10}" + "".join(f"{f'h2 = {t}':>12}" for t in TRUTH))
    for blocks in counts:
        for name in QUANTITIES:
            values = np.array([r[f"{name}_{blocks}"] for r in rows])
            ses = np.array([r[f"{name}_se_{blocks}"] for r in rows])
            ratios = ses.mean(axis=0) / values.std(axis=0, ddof=1)
            lines.append(f"{blocks:>8}{name:>10}" + "".join(f"{ratio:>12.3f}" for ratio in ratios))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicates", type=int, default=100)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--markers", type=int, default=20000)
    parser.add_argument("--pcs", type=int, default=10)
    parser.add_argument("--blocks", default="100", help="jackknife blocks, comma-separated; 'half' = M/2")
    parser.add_argument("--no-reml", dest="reml", action="store_false", help="the moments path only")
    parser.add_argument("--causal", type=int, help="causal markers (default a quarter, as the simulator; 0 = all)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/dask-h2-rhe-calibration"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = args.workdir / (
        f"results_{args.samples}x{args.markers}_pcs{args.pcs}_blocks{args.blocks}"
        f"{'' if args.reml else '_noreml'}{'' if args.causal is None else f'_causal{args.causal}'}"
        ".jsonl"
    )
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
            print(summary(rows, args), flush=True)
    print(summary([r for r in rows if r["replicate"] < args.replicates], args))


if __name__ == "__main__":
    main()
