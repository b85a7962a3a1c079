"""h² on the liability scale from an ascertained case-control study of a liability-threshold disease.

Usage: python benchmarks/liability_simulation.py [--replicates 100] [--prevalence 0.1] [--h2 0.5]
       [--cases 1000] [--markers 2000] [--seed 5000] [--jobs 1]

Each replicate draws a population large enough to hold the cases (cases / prevalence × 1.2
people) with independent markers (p ~ U(0.05, 0.5), no structure), every marker causal:
liability l = √h² · g/SD(g) + √(1 − h²) · e, so that h²_L = h² in the population, and the
disease is l above its (1 − K) quantile, so that its prevalence is exactly K. The study
samples ``--cases`` cases and as many controls (P = 0.5), computes K of the study's
genotypes with dask_h2.kinship (standardized over the study, as a real analysis would),
and fits the 0/1 trait by REML without PCs; h²_L = Lee et al. (2011)'s transformation of
the observed-scale ĥ² with the prevalence K and P (dask_h2.results.liability_factor). The table gives the
mean ĥ²_O and ĥ²_L, the SD of ĥ²_L and its Monte-Carlo SE, the mean reported SE, and the
distance of the mean from the truth in MC SEs.
"""
from __future__ import annotations

import argparse

import dask
import dask.array as da
import numpy as np

from dask_h2.kinship.eigen import eigendecompose
from dask_h2.greml.univariate import fit_traits
from dask_h2.kinship.grm import kinship
from dask_h2.results import TraitFit
from replicates import run_replicates

ROWS = 2000  # population genotypes drawn this many people at a time


def study(seed: int, *, prevalence: float, h2: float, cases: int, markers: int, covariate_effect: float = 0.0,
          rg: float | None = None, ascertained: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(genotypes (2·cases, markers) int8, diseases (2·cases, d) 0/1, covariate (2·cases,) 0/1) of one simulated
    study (module docstring). A sex-like covariate s ~ Bernoulli(0.5) adds ``covariate_effect`` · s to every
    liability (h² stays the share of the liability variance not due to s). With ``rg`` a second disease of the
    same h² and prevalence, per-marker effects of correlation ``rg`` and independent environments, observed on
    the study's samples (ascertained on the first). Not ``ascertained``: 2·cases people drawn at random."""
    rng = np.random.default_rng(seed)
    population = int(round(cases / prevalence * 1.2))
    diseases = 1 if rg is None else 2
    frequency = rng.uniform(0.05, 0.5, markers)
    correlation = np.array([[1.0, rg or 0.0], [rg or 0.0, 1.0]])[:diseases, :diseases]
    effects = rng.multivariate_normal(np.zeros(diseases), correlation, size=markers)
    effects /= np.sqrt(2.0 * frequency * (1.0 - frequency))[:, None]
    genotypes = np.empty((population, markers), dtype=np.int8)
    genetic = np.empty((population, diseases))
    for start in range(0, population, ROWS):  # g = Σ_j β_j (x_j − 2p_j)/√(2p_j(1 − p_j)): population-standardized
        block = rng.binomial(2, frequency, size=(min(ROWS, population - start), markers)).astype(np.int8)
        genotypes[start:start + block.shape[0]] = block
        genetic[start:start + block.shape[0]] = (block - 2.0 * frequency) @ effects
    genetic = (genetic - genetic.mean(axis=0)) / genetic.std(axis=0)
    covariate = rng.integers(0, 2, population).astype(np.float64)
    liability = (np.sqrt(h2) * genetic + np.sqrt(1.0 - h2) * rng.standard_normal((population, diseases))
                 + covariate_effect * covariate[:, None])
    disease = liability > np.quantile(liability, 1.0 - prevalence, axis=0)
    chosen = np.concatenate([rng.choice(np.flatnonzero(disease[:, 0]), cases, replace=False),
                             rng.choice(np.flatnonzero(~disease[:, 0]), cases, replace=False)]) if ascertained \
        else rng.choice(population, 2 * cases, replace=False)
    return genotypes[chosen], disease[chosen].astype(np.float64), covariate[chosen]


def greml_lee(genotypes: np.ndarray, y: np.ndarray, *, prevalence: float,
              covariates: np.ndarray | None = None) -> TraitFit:
    """REML of the 0/1 trait ``y`` on K of the study's ``genotypes`` (n, m), no PCs, the ``covariates`` (n, c)
    as fixed effects, with Lee's h²_L."""
    with dask.config.set(scheduler="synchronous"):
        K = kinship(da.from_array(np.ascontiguousarray(genotypes.T), chunks=(1000, -1)))
    (fit,) = fit_traits(eigendecompose(K.matrix, overwrite=True), y, names=["disease"], method="REML", pcs=0,
                        covariates=covariates, prevalence=[prevalence])
    return fit


def replicate(args: tuple) -> np.ndarray:
    """ĥ²_O, SE_O, ĥ²_L, SE_L and P of one simulated study."""
    seed, prevalence, h2, cases, m = args
    genotypes, y, _ = study(seed, prevalence=prevalence, h2=h2, cases=cases, markers=m)
    fit = greml_lee(genotypes, y[:, 0], prevalence=prevalence)
    return np.array([fit.h2, fit.h2_se, fit.h2_liability, fit.h2_liability_se, fit.case_fraction])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=100)
    parser.add_argument("--prevalence", type=float, default=0.1)
    parser.add_argument("--h2", type=float, default=0.5, help="true h2 on the liability scale")
    parser.add_argument("--cases", type=int, default=1000, help="cases in the study (as many controls)")
    parser.add_argument("--markers", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=5000, help="replicate r uses seed + r")
    parser.add_argument("--jobs", type=int, default=1, help="replicates run in parallel processes")
    args = parser.parse_args()
    tasks = [(args.seed + r, args.prevalence, args.h2, args.cases, args.markers) for r in range(args.replicates)]
    results, seconds = run_replicates(replicate, tasks, args.jobs)
    h2_o, se_o, h2_l, se_l, fraction = results.T
    sd = h2_l.std(ddof=1)
    mc = sd / np.sqrt(args.replicates)
    print(f"{args.replicates} studies of {args.cases} cases + {args.cases} controls (P = {fraction.mean():.3f}) from "
          f"populations with prevalence K = {args.prevalence}, {args.markers} causal markers, true h2_L = {args.h2}; "
          f"REML, no PCs; {seconds:.0f} s")
    print(f"{'true h2_L':>10}{'mean h2_O':>11}{'mean h2_L':>11}{'MC SE':>8}{'(mean-true)/MC SE':>19}{'SD(h2_L)':>10}"
          f"{'mean SE_L':>11}{'SE/SD':>7}")
    print(f"{args.h2:>10.3f}{h2_o.mean():>11.4f}{h2_l.mean():>11.4f}{mc:>8.4f}{(h2_l.mean() - args.h2) / mc:>19.2f}"
          f"{sd:>10.4f}{se_l.mean():>11.4f}{se_l.mean() / sd:>7.3f}")


if __name__ == "__main__":
    main()
