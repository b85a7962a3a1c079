"""A biobank analysis end to end: a BGEN file in, relatives removed, h² on the moments path.

Usage: python benchmarks/biobank_end_to_end.py [--samples 100000] [--markers 10000]
       [--workdir /tmp/dask-h2-biobank] [--memory-limit 700MB]

Data (made once): ``dask-h2 simulate`` with true h² 0.5, 5 % of the samples in parent-offspring
pairs and 5 % in sibling pairs (20 % in a close-relative pair, with no shared environment),
1 % missing calls; its calls written as a .bed (benchmarks/king.py's writer) and exported by
plink2 as the file a biobank ships, 8-bit BGEN v1.2 (``--export bgen-1.2 bits=8 ref-first``),
the traits as a phenotype file. Then the analysis, each step a fresh process measured for wall
time, CPU time and peak RSS (benchmarks/measure.py):

1. ``dask-h2 convert IN.bgen OUT.zarr --pheno PHENO``;
2. ``dask-h2 fit OUT.zarr --method rhe --king-cutoff 0.0884 --out H2``: KING-robust kinship of
   every pair, the greedy unrelated subset, then RHE with 10 PCs on the samples kept;
3. the same fit again: the relatives are reused from the store, so this is RHE's own time.

Prints each step's figures, the samples removed and the estimate beside the truth.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import zarr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from king import write_bed  # noqa: E402
from measure import gib, measured  # noqa: E402

from dask_h2.store import read_strings  # noqa: E402

DASK_H2 = str(Path(sys.executable).with_name("dask-h2"))
TRUE_H2, CUTOFF = 0.5, "0.0884"


def make_data(workdir: Path, samples: int, markers: int) -> tuple[Path, Path]:
    """The BGEN file and the phenotype file of a simulated study with relatives (made once)."""
    simulated, bgen, pheno = workdir / "simulated.zarr", workdir / "ukb.bgen", workdir / "pheno.txt"
    if not simulated.exists():
        pairs = str(samples // 20)
        measured([DASK_H2, "--quiet", "simulate", str(simulated), "--samples", str(samples), "--markers",
                  str(markers), "--h2", str(TRUE_H2), "--parent-offspring", pairs, "--siblings", pairs])
    if not bgen.exists():
        write_bed(simulated, workdir / "simulated")
        subprocess.run(["plink2", "--bfile", str(workdir / "simulated"), "--export", "bgen-1.2", "bits=8",
                        "ref-first", "--out", str(workdir / "ukb")], check=True, capture_output=True)
    if not pheno.exists():
        root = zarr.open_group(simulated, mode="r")
        iid, traits = read_strings(root, "sample_id"), root["traits"][:, 0]
        pheno.write_text("".join(f"{i} {i} {float(v)!r}\n" for i, v in zip(iid, traits)))
    return bgen, pheno


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--markers", type=int, default=10_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/dask-h2-biobank"))
    parser.add_argument("--memory-limit", default="700MB")
    args = parser.parse_args()
    folder = args.workdir / f"{args.samples}x{args.markers}"
    folder.mkdir(parents=True, exist_ok=True)
    bgen, pheno = make_data(folder, args.samples, args.markers)
    store, out = folder / "ukb.zarr", folder / "h2"
    fit = [DASK_H2, "--quiet", "fit", str(store), "--method", "rhe", "--king-cutoff", CUTOFF,
           "--memory-limit", args.memory_limit, "--out", str(out)]
    steps = [("convert the BGEN", [DASK_H2, "--quiet", "convert", str(bgen), str(store), "--pheno", str(pheno),
                                   "--overwrite"]),
             ("KING, cutoff, RHE", fit), ("RHE (relatives reused)", fit)]
    print(f"{args.samples:,} samples x {args.markers:,} markers; {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'step':<24} {'wall s':>8} {'CPU s':>8} {'peak RSS':>10}")
    for name, argv in steps:
        figures = measured(argv)
        print(f"{name:<24} {figures['wall']:8.1f} {figures['cpu']:8.1f} {gib(figures['peak_rss']):>10}", flush=True)
    report = json.loads(Path(f"{out}.json").read_text())
    trait = report["traits"][0]
    removed = report.get("n_relatives_removed")
    print(f"relatives removed: {removed} of {args.samples:,} samples; h2 {trait['h2']:.4f} "
          f"(SE {trait['h2_se']:.4f}), truth {TRUE_H2}: {(trait['h2'] - TRUE_H2) / trait['h2_se']:+.2f} SE; "
          f"fitted on {trait['n']:,} samples")
    assert np.isfinite(trait["h2"])


if __name__ == "__main__":
    main()
