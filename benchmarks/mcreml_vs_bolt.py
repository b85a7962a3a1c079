"""MC-REML side by side with BOLT-LMM's ``--reml`` (the algorithm's own implementation) on the same genotypes.

Usage: python benchmarks/mcreml_vs_bolt.py [--samples 32768] [--markers 16384] [--h2 0.5] [--seed 1]
       [--threads 2] [--bolt /work/peers/bolt/build/bolt] [--workdir /tmp/dask-h2-bolt]

One simulated population (no structure, no missing calls, so that neither needs PCs and both
standardize alike), one trait of true h² ``--h2``, written once as a store and as the same
genotypes in a PLINK .bed (bed-reader) for BOLT. Then, each under :mod:`measure` (wall, CPU, peak
RSS), BOLT on ``--threads`` threads and dask-h2 on its default local threads (one per core):

- BOLT-LMM v2.5 ``--stage=1 --reml`` (the fork built in ../shared/peers runs the fit as stage 1; its defaults: 15 Monte Carlo trials, then the refining phase of 100);
- ``dask-h2 fit STORE --method mc-reml --pcs 0 --scale empirical`` (T = 100, started from RHE).

The kinships agree: BOLT scales each marker to ‖w‖² = n − 1 and divides by the effective marker
count Σ‖Qw‖²/(n − c), which with the intercept alone is M; dask-h2's ``--scale empirical`` scales
to ‖w‖² = n and divides by M: the same K up to (n − 1)/n. Prints both estimates, their difference
in combined SEs (√(SE₁² + SE₂²)), the SE ratio, and the walls, CPU and peak RSS with their ratios.
BOLT is a benchmark-only peer (build notes: ../shared/peers), never a dependency.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
import zarr
from bed_reader import to_bed

sys.path.insert(0, str(Path(__file__).parent))
from measure import gib, measured

from dask_h2.io.convert import simulate_to
from dask_h2.io.simulate import SimulationDesign
from dask_h2.store import is_complete, read_strings


def write_bed(store: Path, prefix: Path) -> str:
    """The store's genotypes as ``prefix``.bed/.bim/.fam and its first trait as ``prefix``.pheno; its name."""
    root = zarr.open_group(store, mode="r")
    samples, variants = read_strings(root, "sample_id"), read_strings(root, "variant_id")
    if not prefix.with_suffix(".bed").exists():
        dosage = root["call_dosage"][:].T  # (n, M) int8, -1 missing (none here)
        to_bed(str(prefix.with_suffix(".bed")), dosage, properties={
            "fid": samples, "iid": samples, "sid": variants, "chromosome": np.full(len(variants), "1"),
            "bp_position": np.arange(1, len(variants) + 1) * 100, "allele_1": np.full(len(variants), "A"),
            "allele_2": np.full(len(variants), "G")})
    name = read_strings(root, "trait_name")[0]
    values = root["traits"][:, 0]
    prefix.with_suffix(".pheno").write_text("FID IID y\n" + "".join(f"{s} {s} {float(v)!r}\n" for s, v in zip(samples, values)))
    return name


def run_bolt(bolt: str, prefix: Path, threads: int) -> tuple[dict, float, float]:
    """BOLT's run under measure, and its h² and SE from the last "h2g (1,1)" line (the refined estimate)."""
    log = prefix.with_suffix(".bolt.txt")
    command = f"exec {bolt} --stage=1 --reml --bfile {prefix} --phenoFile {prefix}.pheno --phenoCol y --numThreads {threads} > {log}"
    run = measured(["sh", "-c", command])
    h2, se = re.findall(r"h2g \(1,1\): ([0-9.eE+-]+) \(([0-9.eE+-]+)\)", log.read_text())[-1]
    return run, float(h2), float(se)


def run_ours(store: Path, out: Path) -> tuple[dict, dict]:
    """dask-h2's run under measure (local threads, one per core) and its report."""
    command = [sys.executable, "-m", "dask_h2", "--quiet", "fit", str(store), "--method", "mc-reml", "--pcs", "0",
               "--scale", "empirical", "--memory-limit", "8GB", "--out", str(out)]
    run = measured(command)
    return run, json.loads(out.with_suffix(".json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=32768)
    parser.add_argument("--markers", type=int, default=16384)
    parser.add_argument("--h2", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bolt", default="/work/peers/bolt/build/bolt")
    parser.add_argument("--workdir", default="/tmp/dask-h2-bolt")
    args = parser.parse_args()
    folder = Path(args.workdir)
    folder.mkdir(parents=True, exist_ok=True)
    tag = f"sim_{args.samples}x{args.markers}_s{args.seed}"
    store = folder / f"{tag}.zarr"
    if not is_complete(store):
        simulate_to(store, SimulationDesign(n_samples=args.samples, n_markers=args.markers, h2=(args.h2,),
                                            seed=args.seed, n_populations=1, missing_rate=0.0), progress=False)
    name = write_bed(store, folder / tag)
    bolt, bolt_h2, bolt_se = run_bolt(args.bolt, folder / tag, args.threads)
    ours, report = run_ours(store, folder / f"{tag}_mc")
    (fit,) = [t for t in report["traits"] if t["name"] == name]
    combined = np.hypot(fit["h2_se"], bolt_se)
    print(f"{args.samples} x {args.markers}, true h2 {args.h2}, {args.threads} threads")
    print(f"  BOLT-LMM --reml       h2 {bolt_h2:.4f} ({bolt_se:.4f})  wall {bolt['wall']:.0f} s  CPU {bolt['cpu']:.0f} s  "
          f"peak RSS {gib(bolt['peak_rss'])}")
    print(f"  dask-h2 mc-reml       h2 {fit['h2']:.4f} ({fit['h2_se']:.4f})  wall {ours['wall']:.0f} s  CPU "
          f"{ours['cpu']:.0f} s  peak RSS {gib(ours['peak_rss'])}  passes {report['passes_over_genotypes']}  "
          f"CG {report['cg_iterations'][name]}")
    print(f"  difference {fit['h2'] - bolt_h2:+.4f} = {(fit['h2'] - bolt_h2) / combined:+.2f} combined SE; SE ratio "
          f"(ours / BOLT) {fit['h2_se'] / bolt_se:.3f}; wall ratio {ours['wall'] / bolt['wall']:.2f}, CPU ratio "
          f"{ours['cpu'] / bolt['cpu']:.2f}, peak RSS ratio {ours['peak_rss'] / bolt['peak_rss']:.2f}")


if __name__ == "__main__":
    main()
