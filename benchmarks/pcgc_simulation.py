"""PCGC (moments path) against GREML + Lee on ascertained case-control studies, and the moments rG.

Usage: python benchmarks/pcgc_simulation.py [--replicates 100] [--prevalence 0.1 0.01] [--h2 0.2 0.5]
       [--covariate-effect 1.0] [--cases 1000] [--markers 2000] [--rg-replicates 100] [--rg 0 0.5]
       [--rg-designs quantitative ascertained random] [--random-prevalence 0.3]
       [--seed 7000] [--jobs 1]

Case-control grid (K × h²_L, ``--replicates`` studies each): each replicate is liability_simulation.py's
study (a population of cases / K × 1.2 people, independent markers all causal, h²_L = h² in the
population, 1,000 cases and 1,000 controls drawn from it), written to a store and fitted twice: PCGC
on the moments path (``dask_h2.api.fit(method="PCGC")``, 10 probes, 100 jackknife blocks, no PCs)
and REML + Lee's transformation (the exact path's ``--prevalence``) on the same data. Then the same
with a sex-like 0/1 covariate s (Bernoulli 0.5) adding ``--covariate-effect`` · s to the liability
(K = 0.1, h²_L = 0.5 of the liability not due to s), both methods given s as a covariate. Columns:
mean ĥ²_L and its Monte-Carlo SE, bias in % and in MC SEs, SD over replicates, mean reported SE,
SE/SD (± its sampling error SE/SD/√(2(R − 1))).

rG (``--rg-replicates`` each, per ``--rg``): two quantitative traits on 2,000 samples and 1,000 markers
(a new genotype matrix per replicate, p ~ U(0.05, 0.5)), h² = 0.5 each, per-marker effects bivariate
normal with correlation rG, residual correlation 0.3, fitted by ``fit(method="RHE",
bivariate="t1,t2")``; and two diseases (K = 0.1 each, h²_L = 0.5, per-marker liability effects of
correlation rG, independent environments), either ascertained on the first (its cases and as many of
its controls, the second observed on them: the second is then not ascertained on itself, as PCGC's
risk model assumes) or drawn at random from the population (K = ``--random-prevalence``, no
ascertainment, the model exact for both), by ``fit(method="PCGC", bivariate=...)``: mean rG, MC SE,
SD and mean jackknife SE.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from dask_h2 import api
from dask_h2.store import create_store, mark_complete, write_traits
from liability_simulation import greml_lee, study
from replicates import run_replicates


def write_study(path: Path, genotypes: np.ndarray, traits: np.ndarray, names: list[str]) -> Path:
    """A store of ``genotypes`` (n, m) int8 and ``traits`` (n, k)."""
    n, m = genotypes.shape
    root = create_store(path, n_variants=m, sample_id=np.array([f"s{i}" for i in range(n)]),
                        variant_id=np.array([f"v{j}" for j in range(m)]), chunk_variants=m, attrs={})
    root["call_dosage"][:] = genotypes.T
    write_traits(root, traits, trait_name=np.array(names, dtype=object))
    mark_complete(root)
    return path


def case_control(args: tuple) -> np.ndarray:
    """PCGC ĥ²_L, its SE, GREML + Lee ĥ²_L, its SE, of one study (with the covariate when it has an effect)."""
    seed, prevalence, h2, cases, markers, effect = args
    genotypes, y, sex = study(seed, prevalence=prevalence, h2=h2, cases=cases, markers=markers,
                              covariate_effect=effect)
    with tempfile.TemporaryDirectory() as folder:
        store = write_study(Path(folder) / "study.zarr", genotypes, y, ["disease"])
        covariate = None
        if effect:
            covariate = Path(folder) / "sex.txt"
            covariate.write_text("".join(f"s{i} s{i} {v:g}\n" for i, v in enumerate(sex)))
        (pcgc,) = api.fit(store, method="PCGC", prevalence=prevalence, pcs=0, qcovar=covariate, progress=False,
                          moments=api.MomentsSettings(seed=seed)).traits
    greml = greml_lee(genotypes, y[:, 0], prevalence=prevalence, covariates=sex[:, None] if effect else None)
    return np.array([pcgc.h2, pcgc.h2_se, greml.h2_liability, greml.h2_liability_se])


def disease_pair(args: tuple) -> np.ndarray:
    """PCGC rG and its SE of one study of two diseases."""
    seed, rg, prevalence, h2, cases, markers, ascertained = args
    genotypes, y, _ = study(seed, prevalence=prevalence, h2=h2, cases=cases, markers=markers, rg=rg,
                            ascertained=ascertained)
    with tempfile.TemporaryDirectory() as folder:
        store = write_study(Path(folder) / "pair.zarr", genotypes, y, ["d1", "d2"])
        (pair,) = api.fit(store, method="PCGC", prevalence=prevalence, bivariate="d1,d2", pcs=0, progress=False,
                          moments=api.MomentsSettings(seed=seed)).pairs
    return np.array([pair.rg, pair.rg_se])


def correlated(args: tuple) -> np.ndarray:
    """Moments rG and its SE of one pair of simulated traits."""
    seed, rg, n, markers = args
    rng = np.random.default_rng(seed)
    frequency = rng.uniform(0.05, 0.5, markers)
    genotypes = rng.binomial(2, frequency, size=(n, markers)).astype(np.int8)
    w = (genotypes - 2 * frequency) / np.sqrt(2 * frequency * (1 - frequency))
    effects = rng.multivariate_normal([0, 0], [[1, rg], [rg, 1]], size=markers) * np.sqrt(0.5 / markers)
    noise = rng.multivariate_normal([0, 0], [[1, 0.3], [0.3, 1]], size=n) * np.sqrt(0.5)
    traits = w @ effects + noise
    with tempfile.TemporaryDirectory() as folder:
        store = write_study(Path(folder) / "pair.zarr", genotypes, traits, ["t1", "t2"])
        (pair,) = api.fit(store, method="RHE", bivariate="t1,t2", pcs=0, progress=False,
                          moments=api.MomentsSettings(seed=seed)).pairs
    return np.array([pair.rg, pair.rg_se])


def summary(label: str, estimates: np.ndarray, ses: np.ndarray | None, truth: float) -> str:
    replicates = estimates.size
    sd = estimates.std(ddof=1)
    mc = sd / np.sqrt(replicates)
    bias = f"{100 * (estimates.mean() - truth) / truth:+.1f}" if truth else "-"
    line = (f"{label:<28}{estimates.mean():>9.4f}{mc:>8.4f}{bias:>8}{(estimates.mean() - truth) / mc:>+8.2f}"
            f"{sd:>8.4f}")
    if ses is not None:
        ratio = ses.mean() / sd
        line += f"{ses.mean():>9.4f}{ratio:>7.3f} ± {ratio / np.sqrt(2 * (replicates - 1)):.3f}"
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=100, help="case-control studies per setting (0: none)")
    parser.add_argument("--prevalence", type=float, nargs="+", default=[0.1, 0.01])
    parser.add_argument("--h2", type=float, nargs="+", default=[0.2, 0.5], help="true h2 on the liability scale")
    parser.add_argument("--covariate-effect", type=float, default=1.0,
                        help="liability shift of the 0/1 covariate in the covariate setting (0: no such setting)")
    parser.add_argument("--cases", type=int, default=1000, help="cases in the study (as many controls)")
    parser.add_argument("--markers", type=int, default=2000)
    parser.add_argument("--rg-replicates", type=int, default=100, help="pairs of traits per rG (0: none)")
    parser.add_argument("--rg", type=float, nargs="+", default=[0.0, 0.5])
    parser.add_argument("--rg-designs", nargs="+", default=["quantitative", "ascertained", "random"],
                        choices=["quantitative", "ascertained", "random"],
                        help="rG settings: two quantitative traits; two diseases in a study ascertained on the first; "
                             "two diseases in a random sample of the population")
    parser.add_argument("--random-prevalence", type=float, default=0.3,
                        help="K of both diseases in the random-sample design")
    parser.add_argument("--seed", type=int, default=7000, help="replicate r uses seed + r")
    parser.add_argument("--jobs", type=int, default=1, help="replicates run in parallel processes")
    args = parser.parse_args()
    header = (f"{'':<28}{'mean':>9}{'MC SE':>8}{'bias %':>8}{'/MC SE':>8}{'SD':>8}{'mean SE':>9}{'SE/SD':>7}")
    settings = [(k, h2, 0.0) for k in args.prevalence for h2 in args.h2] if args.replicates else []
    if args.replicates and args.covariate_effect:
        settings.append((0.1, 0.5, args.covariate_effect))
    for prevalence, h2, effect in settings:
        tasks = [(args.seed + r, prevalence, h2, args.cases, args.markers, effect) for r in range(args.replicates)]
        results, seconds = run_replicates(case_control, tasks, args.jobs)
        with_covariate = f", a 0/1 covariate shifting the liability by {effect} (fitted)" if effect else ""
        print(f"\nK = {prevalence}: {args.replicates} studies of {args.cases} cases + {args.cases} controls, "
              f"{args.markers} causal markers, true h2_L = {h2}{with_covariate} ({seconds:.0f} s)")
        print(header)
        print(summary("PCGC (moments path)", results[:, 0], results[:, 1], h2))
        print(summary("GREML + Lee (exact path)", results[:, 2], results[:, 3], h2))
    for rg in args.rg if args.rg_replicates else []:
        if "quantitative" in args.rg_designs:
            tasks = [(args.seed + r, rg, 2000, 1000) for r in range(args.rg_replicates)]
            results, seconds = run_replicates(correlated, tasks, args.jobs)
            print(f"\nrG = {rg}: {args.rg_replicates} pairs of quantitative traits, 2000 samples, 1000 markers, "
                  f"h2 = 0.5 each, rE = 0.3 ({seconds:.0f} s)")
            print(header)
            print(summary("moments rG (RHE bivariate)", results[:, 0], results[:, 1], rg))
        for design in [d for d in ("ascertained", "random") if d in args.rg_designs]:
            prevalence = 0.1 if design == "ascertained" else args.random_prevalence
            tasks = [(args.seed + r, rg, prevalence, 0.5, args.cases, args.markers, design == "ascertained")
                     for r in range(args.rg_replicates)]
            results, seconds = run_replicates(disease_pair, tasks, args.jobs)
            how = (f"{args.cases} cases + {args.cases} controls of the first, the second observed on them"
                   if design == "ascertained" else f"{2 * args.cases} people drawn at random")
            print(f"\nrG = {rg}: {args.rg_replicates} studies of two diseases (K = {prevalence}, h2_L = 0.5 each, "
                  f"rE = 0), {how} ({seconds:.0f} s)")
            print(header)
            print(summary(f"PCGC rG ({design})", results[:, 0], results[:, 1], rg))

if __name__ == "__main__":
    main()
