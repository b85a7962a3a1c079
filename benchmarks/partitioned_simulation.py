"""Several GRMs: recovering h² that sits wholly in the rare-MAF bin of a MAF partition.

Usage: python benchmarks/partitioned_simulation.py [--replicates 60] [--samples 1200] [--markers 3000]
       [--partition maf:0.01,0.05,0.2,0.5] [--h2 0.5] [--seed 3000] [--jobs 1]

Each replicate draws genotypes of independent markers, a third of them in each MAF bin
(allele frequencies uniform inside the bins, away from their edges), computes one K_k per
bin in one pass with dask_h2.kinship.grm.partitioned_kinship, and puts all the heritability on the
markers the partition assigns to the first (rarest) bin: g = Z₁β/√M₁ with Z₁ standardized as
K₁, so that V = h² K₁ + (1 − h²) I holds exactly. The several-GRM REML (AI-REML, no PCs) is
fitted unconstrained (GCTA's --reml-no-constrain), so that the bins with no heritability are
not truncated at 0, and constrained. For each bin the table gives the true h²_k, the mean
ĥ²_k with its Monte-Carlo SE and their distance in MC SEs, the SD, the mean reported SE
and the constrained mean.
"""
from __future__ import annotations

import argparse

import dask
import dask.array as da
import numpy as np

from dask_h2.kinship.grm import partitioned_kinship
from dask_h2.greml.components import fit_components
from dask_h2.kinship.partition import parse_partition
from dask_h2.kinship.standardize import centre_and_scale, marker_moments, standardize
from replicates import run_replicates


def replicate(args: tuple) -> np.ndarray:
    """(bins, 3): ĥ²_k and its SE unconstrained, ĥ²_k constrained."""
    seed, n, m, spec, h2 = args
    rng = np.random.default_rng(seed)
    variant_id = np.array([f"v{j}" for j in range(m)], dtype=object)
    partition = parse_partition(spec, variant_id)
    edges = np.array(partition.maf_edges)
    bins = len(edges) - 1
    low, high = edges[:-1] + 0.15 * np.diff(edges), edges[1:] - 0.15 * np.diff(edges)
    which = np.arange(m) % bins
    frequency = rng.uniform(low[which], high[which])
    dosage = rng.binomial(2, frequency[:, None], size=(m, n)).astype(np.int8)
    with dask.config.set(scheduler="synchronous"):
        parts = partitioned_kinship(da.from_array(dosage, chunks=(1000, -1)), partition)
    centre, inverse_scale, _ = centre_and_scale(marker_moments(dosage), n_samples=n, scale="hwe")
    p = centre / 2.0
    rare = (np.minimum(p, 1 - p) >= edges[0]) & (np.minimum(p, 1 - p) < edges[1]) & (inverse_scale > 0)
    Z = standardize(dosage[rare], centre=centre[rare], inverse_scale=inverse_scale[rare]).astype(np.float64)
    y = np.sqrt(h2) * (Z.T @ rng.standard_normal(rare.sum())) / np.sqrt(rare.sum())
    y += np.sqrt(1.0 - h2) * rng.standard_normal(n)
    X = np.ones((n, 1))
    rows = []
    for constrain in (False, True):
        (fit,) = fit_components(
            parts.matrices,
            y[:, None],
            names=["y"],
            X=X,
            columns=["intercept"],
            component_names=parts.part_names,
            n_markers=parts.part_markers,
            constrain=constrain,
        )
        rows.append([[c.h2, c.h2_se] for c in fit.components])
    free, held = np.array(rows[0]), np.array(rows[1])
    return np.column_stack([free, held[:, 0]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=60)
    parser.add_argument("--samples", type=int, default=1200)
    parser.add_argument("--markers", type=int, default=3000)
    parser.add_argument("--partition", default="maf:0.01,0.05,0.2,0.5")
    parser.add_argument("--h2", type=float, default=0.5, help="true h2, all of it in the first bin")
    parser.add_argument("--seed", type=int, default=3000, help="replicate r uses seed + r")
    parser.add_argument("--jobs", type=int, default=1, help="replicates run in parallel processes")
    args = parser.parse_args()
    tasks = [(args.seed + r, args.samples, args.markers, args.partition, args.h2) for r in range(args.replicates)]
    results, seconds = run_replicates(replicate, tasks, args.jobs)
    names = parse_partition(args.partition, np.array([], dtype=object)).names
    print(f"{args.replicates} replicates of {args.samples} samples x {args.markers} markers ({len(names)} MAF bins), "
          f"h2 = {args.h2} in {names[0]}; AI-REML, no PCs; {seconds:.0f} s")
    print(f"{'bin':<14}{'true h2':>8}{'mean h2':>9}{'MC SE':>8}{'(mean-true)/MC SE':>19}{'SD':>8}{'mean SE':>9}"
          f"{'SE/SD':>7}{'constrained mean':>18}")
    for k, name in enumerate(names):
        estimate, se, held = results[:, k].T
        truth = args.h2 if k == 0 else 0.0
        sd = estimate.std(ddof=1)
        mc = sd / np.sqrt(args.replicates)
        print(f"{name:<14}{truth:>8.3f}{estimate.mean():>9.4f}{mc:>8.4f}{(estimate.mean() - truth) / mc:>19.2f}"
              f"{sd:>8.4f}{se.mean():>9.4f}{se.mean() / sd:>7.3f}{held.mean():>18.4f}")


if __name__ == "__main__":
    main()
