"""Why relatives matter: h² with and without ``--king-cutoff 0.0884`` when families share an environment.

Usage: python benchmarks/relatives_matter.py [--samples 3000] [--markers 10000] [--replicates 5]
       [--h2 0.3] [--c2 0.2] [--workdir /tmp/dask-h2-relatives]

Each replicate simulates a store (its own seed) with 20 % of the samples in first-degree pairs (half
parent-offspring, half siblings) that share an environment worth c² of the trait's variance, then fits
h² by REML (exact path) and by RHE (moments path), 5 PCs, on all samples and with the relatives removed
(``Selection(king_cutoff=0.0884)``). Prints each replicate, then the mean and SE of each fit beside the
true h².
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

from dask_h2 import api

CUTOFF = 0.0884


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--markers", type=int, default=10000)
    parser.add_argument("--replicates", type=int, default=5)
    parser.add_argument("--h2", type=float, default=0.3)
    parser.add_argument("--c2", type=float, default=0.2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/dask-h2-relatives"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    pairs = args.samples // 20
    print(f"{args.samples} samples x {args.markers} markers, {pairs} parent-offspring and {pairs} sibling pairs "
          f"({4 * pairs / args.samples:.0%} of the samples), true h2 = {args.h2}, shared environment c2 = {args.c2}")
    fits = {"REML": [], "REML --king-cutoff": [], "RHE": [], "RHE --king-cutoff": []}
    for replicate in range(args.replicates):
        store = args.workdir / f"r{replicate}.zarr"
        shutil.rmtree(store, ignore_errors=True)
        api.simulate(store, n_samples=args.samples, n_markers=args.markers, h2=[args.h2], seed=100 + replicate,
                     parent_offspring=pairs, siblings=pairs, family_environment=args.c2, progress=False)
        unrelated = api.Selection(king_cutoff=CUTOFF)
        for name, method, selection in (("REML", "REML", api.Selection()), ("REML --king-cutoff", "REML", unrelated),
                                        ("RHE", "RHE", api.Selection()), ("RHE --king-cutoff", "RHE", unrelated)):
            report = api.fit(store, method=method, pcs=5, selection=selection, progress=False)
            fits[name].append((report.traits[0].h2, report.n_samples))
        print(f"replicate {replicate}: " + ", ".join(f"{name} {values[-1][0]:.3f} (n={values[-1][1]})"
                                                    for name, values in fits.items()), flush=True)
        shutil.rmtree(store)
    print(f"\n{'fit':<20} {'mean h2':>8} {'SE':>7} {'samples':>8}   truth {args.h2}")
    for name, values in fits.items():
        h2 = np.array([v[0] for v in values])
        print(f"{name:<20} {h2.mean():8.3f} {h2.std(ddof=1) / np.sqrt(h2.size):7.3f} {values[0][1]:8d}")


if __name__ == "__main__":
    main()
