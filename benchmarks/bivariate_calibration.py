"""Calibration of the bivariate REML's rG and its SE over simulated replicates.

Usage: python benchmarks/bivariate_calibration.py [--replicates 200] [--samples 1000] [--markers 2000]
       [--rg 0,0.5] [--h2 0.5,0.5] [--re 0.2] [--pcs 10] [--constrain] [--seed 9000] [--jobs 1]

Each replicate simulates fresh genotypes (dask_h2.io.simulate: 3 subpopulations, 1 % missing
calls), computes K with dask_h2.kinship and decomposes it, then for each true rG draws two
traits exactly from the bivariate model: every marker gets effects (β₁, β₂) with correlation
rG, g_t = Z β_t / √M on the genotypes standardized as in K (so Cov(g₁, g₂) = rG K), and
y_t = √h²_t g_t + √(1 − h²_t) e_t with residual correlation ``--re``. The pair is fitted on
the eigenbasis path (dask_h2.greml.bivariate.fit_bivariate, REML, 10 PCs). For each rG the table
gives the mean r̂G with its Monte-Carlo SE, the SD of r̂G, the mean reported SE and their
ratio, the mean ĥ² of each trait, and how often the LRT rejects rG = 0 at 5 %; then, to
tell the components' bias from that of their ratio, the mean Ĉg over the true Cg and the
correlation of the means, mean Ĉg / √(mean V̂g₁ · mean V̂g₂). Fits are unconstrained by
default (|rG| may exceed 1), so that the spread is not truncated.
"""
from __future__ import annotations

import argparse

import dask
import dask.array as da
import numpy as np

from dask_h2.greml.bivariate import fit_bivariate
from dask_h2.kinship.eigen import eigendecompose
from dask_h2.greml.univariate import fixed_effects
from dask_h2.kinship.grm import kinship
from dask_h2.io.simulate import SimulationDesign, parse_h2_list, simulate
from dask_h2.kinship.standardize import centre_and_scale, marker_moments, standardize
from replicates import run_replicates


def replicate(args: tuple) -> np.ndarray:
    """(rG values, 8): r̂G, SE, ĥ²₁, ĥ²₂, the LRT P of rG = 0, V̂g₁, V̂g₂ and Ĉg, one row per true rG."""
    seed, n, m, rgs, h2, re, pcs, constrain = args
    source = simulate(SimulationDesign(n_samples=n, n_markers=m, h2=(0.0,), seed=seed))
    dosage = source.read_block(0, m)
    with dask.config.set(scheduler="synchronous"):
        K = kinship(da.from_array(dosage, chunks=(1000, -1)))
    eigen = eigendecompose(K.matrix, overwrite=True)
    centre, inverse_scale, _ = centre_and_scale(marker_moments(dosage), n_samples=n, scale="hwe")
    Z = standardize(dosage, centre=centre, inverse_scale=inverse_scale).astype(np.float64)  # (m, n), as K standardizes
    X, columns = fixed_effects(eigen, pcs)
    rng = np.random.default_rng([seed, 2])
    rows = []
    for rg in rgs:
        effects = rng.multivariate_normal([0.0, 0.0], [[1.0, rg], [rg, 1.0]], size=m)
        genetic = Z.T @ effects / np.sqrt(K.n_markers_used)
        noise = rng.multivariate_normal([0.0, 0.0], [[1.0, re], [re, 1.0]], size=n)
        Y = np.sqrt(h2) * genetic + np.sqrt(1.0 - np.asarray(h2)) * noise
        (pair,) = fit_bivariate(eigen, Y, names=["t1", "t2"], pairs=[(0, 1)], X=X, columns=columns, constrain=constrain)
        rows.append([pair.rg, pair.rg_se, pair.h2[0], pair.h2[1], pair.pval_rg0, pair.vg[0][0], pair.vg[1][1],
                     pair.vg[0][1]])
    return np.array(rows)


def summary(results: np.ndarray, rgs: tuple[float, ...], h2: tuple[float, float]) -> str:
    """The calibration table from ``results`` (replicates, rG values, 8)."""
    lines = [f"{'true rG':>8}{'mean rG':>9}{'MC SE':>8}{'(mean-true)/MC SE':>19}{'SD(rG)':>9}{'mean SE':>9}"
             f"{'SE/SD':>7}{'mean h2 1':>10}{'mean h2 2':>10}{'P(rG=0)<0.05':>14}{'mean Cg/Cg':>12}"
             f"{'r of means':>12}"]
    replicates = results.shape[0]
    for j, rg in enumerate(rgs):
        estimate, se, h2a, h2b, pval, vg1, vg2, cg = results[:, j].T
        sd = estimate.std(ddof=1)
        mc = sd / np.sqrt(replicates)
        true_cg = rg * np.sqrt(h2[0] * h2[1])
        lines.append(f"{rg:>8.2f}{estimate.mean():>9.4f}{mc:>8.4f}{(estimate.mean() - rg) / mc:>19.2f}{sd:>9.4f}"
                     f"{np.nanmean(se):>9.4f}{np.nanmean(se) / sd:>7.3f}{h2a.mean():>10.4f}{h2b.mean():>10.4f}"
                     f"{np.mean(pval < 0.05):>14.3f}"
                     f"{cg.mean() / true_cg if true_cg else np.nan:>12.4f}"
                     f"{cg.mean() / np.sqrt(vg1.mean() * vg2.mean()):>12.4f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=200)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--markers", type=int, default=2000)
    parser.add_argument("--rg", default="0,0.5", help="true genetic correlations")
    parser.add_argument("--h2", default="0.5,0.5", help="true h2 of the two traits")
    parser.add_argument("--re", type=float, default=0.2, help="true residual correlation")
    parser.add_argument("--pcs", type=int, default=10)
    parser.add_argument("--constrain", action="store_true", help="keep |rG| <= 1 (default: unconstrained)")
    parser.add_argument("--seed", type=int, default=9000, help="replicate r uses seed + r")
    parser.add_argument("--jobs", type=int, default=1, help="replicates run in parallel processes")
    args = parser.parse_args()
    rgs, h2 = parse_h2_list(args.rg), parse_h2_list(args.h2)
    tasks = [(args.seed + r, args.samples, args.markers, rgs, h2, args.re, args.pcs, args.constrain)
             for r in range(args.replicates)]
    results, seconds = run_replicates(replicate, tasks, args.jobs)
    print(f"{args.replicates} replicates of {args.samples} samples x {args.markers} markers, h2 = {h2}, "
          f"rE = {args.re}, "
          f"bivariate REML, {args.pcs} PCs, {'|rG| <= 1' if args.constrain else 'unconstrained'}; "
          f"{seconds:.0f} s")
    print(summary(results, rgs, h2))


if __name__ == "__main__":
    main()
