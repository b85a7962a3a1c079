"""MC-REML against the exact path's REML, and MC-REML at a scale the exact path cannot fit.

Usage: python benchmarks/mcreml_vs_exact.py [--samples 5000] [--markers 20000] [--seeds 3]
       [--mc-seeds 1] [--mc-samples 100] [--components 1,3] [--workdir /tmp/dask-h2-mcreml]
       python benchmarks/mcreml_vs_exact.py --scale [--samples 50000] [--markers 20000]
       python benchmarks/mcreml_vs_exact.py --replicates 100 --samples 2000 --markers 5000 [--jobs 2]

Agreement (default): simulates ``--seeds`` stores (3 subpopulations, 1 % missing calls, traits of
h² = 0.6 and 0.3) with a quantitative covariate; for 1 component and for 3 MAF components fits
MC-REML (``--pcs 10``, its start the RHE estimate, T = ``--mc-samples``) and the exact path's REML with the same
fixed effects (the covariate and MC-REML's PCs, read from the store, as covariates). Prints per trait
and component dev = (MC-REML − REML) / SE_REML and the SE ratio, with the passes over the
genotypes, the CG iterations and the walls; the Monte Carlo theory (BOLT-REML's) puts dev at
SD 1/√T (0.1 at T = 100) and the SE ratio at √(1 + 1/T) (1.005) (the AI at the last iterate aside).

Scale (``--scale``): one store, MC-REML only, run as ``dask-h2 fit --method mc-reml`` under
:mod:`measure` (wall, peak RSS), then the time of one pass with T + 1 = 101 columns per trait
(the genotypes held in memory, as in the fit) so that wall ≈ passes × one-pass time can be checked.

Replicates (``--replicates R``): R simulated data sets (new genotypes, effects and MC-REML seed each;
``--jobs`` processes), each fitted by MC-REML and by the exact path's REML with the same fixed effects
as above (1 component): SD(MC-REML)/SD(REML) of ĥ² per true h² with a bootstrap 95 % interval, the
mean SE ratio and the RMS of dev. Theory: SD ratio √(1 + 1/T) ≈ 1.005.

One pass (``--one-pass``): the CPU time of a pass at B = 2 and B = 101 right-hand sides, the inputs
of the cost model in deploy/README.md.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import zarr

sys.path.insert(0, str(Path(__file__).parent))
from measure import gib, measured  # noqa: E402
from replicates import run_replicates  # noqa: E402

from dask_h2 import api  # noqa: E402
from dask_h2.io.convert import simulate_to  # noqa: E402
from dask_h2.io.simulate import SimulationDesign  # noqa: E402
from dask_h2.kinship.pcs import RHE_GROUP  # noqa: E402
from dask_h2.store import is_complete  # noqa: E402

PARTITION = "maf:0,0.1,0.25,0.5"
PCS = 10
TRUE_H2 = (0.6, 0.3)


def simulated(folder: Path, *, n: int, m: int, seed: int) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    store = folder / f"sim_{n}x{m}_s{seed}.zarr"
    if not is_complete(store):
        simulate_to(store, SimulationDesign(n_samples=n, n_markers=m, h2=TRUE_H2, seed=seed), progress=False)
    covariate = folder / f"age_{n}_s{seed}.txt"
    values = np.random.default_rng(seed + 100).normal(50, 10, n)
    covariate.write_text("".join(f"ind{i + 1} ind{i + 1} {v}\n" for i, v in enumerate(values)))
    return store, covariate


def with_pcs(store: Path, covariate: Path) -> Path:
    """The covariate file with MC-REML's PCs (the store's sketch PCs) appended as covariates."""
    pcs = zarr.open_group(store, mode="r")[RHE_GROUP]["pcs"][:]
    rows = [line.split() for line in covariate.read_text().splitlines()]
    path = covariate.with_name(covariate.stem + "_pcs.txt")
    path.write_text("".join(" ".join([*row, *map(repr, pc)]) + "\n" for row, pc in zip(rows, pcs.tolist())))
    return path


def entries(fit) -> list[tuple[str, float, float]]:
    """(name, h², SE) of the total and, with several components, of each."""
    out = [("total", fit.h2, fit.h2_se)]
    if len(fit.components) > 1:
        out += [(c.name, c.h2, c.h2_se) for c in fit.components]
    return out


def agreement(args: argparse.Namespace) -> None:
    rows = []
    for seed in range(1, args.seeds + 1):
        store, covariate = simulated(Path(args.workdir), n=args.samples, m=args.markers, seed=seed)
        for size in args.components:
            partition = PARTITION if size == 3 else None
            for mc_seed in range(1, args.mc_seeds + 1):
                start = time.perf_counter()
                mc = api.fit(store, method="MC-REML", pcs=PCS, qcovar=covariate, partition=partition,
                             mc_reml=api.MCRemlSettings(seed=mc_seed, mc_samples=args.mc_samples), progress=False)
                mc_wall = time.perf_counter() - start
                if mc_seed == 1:
                    start = time.perf_counter()
                    exact = api.fit(store, method="REML", pcs=0, qcovar=with_pcs(store, covariate),
                                    components=size > 1, partition=partition, progress=False)
                    exact_wall = time.perf_counter() - start
                for fit, reference in zip(mc.traits, exact.traits):
                    for (name, value, se), (_, exact_value, exact_se) in zip(entries(fit), entries(reference)):
                        row = {"seed": seed, "mc_seed": mc_seed, "components": size, "trait": fit.name,
                               "entry": name, "mc": value, "mc_se": se, "exact": exact_value, "exact_se": exact_se,
                               "dev": (value - exact_value) / exact_se, "se_ratio": se / exact_se,
                               "passes": mc.extra["passes_over_genotypes"],
                               "cg": mc.extra["cg_iterations"][fit.name], "mc_wall": mc_wall,
                               "exact_wall": exact_wall, "converged": fit.converged}
                        rows.append(row)
                        print(f"seed {seed} mc-seed {mc_seed} K={size} {fit.name:<7}{name:<12} MC-REML {value:.4f} "
                              f"({se:.4f})  REML {exact_value:.4f} ({exact_se:.4f})  dev {row['dev']:+.3f} SE  "
                              f"SE ratio {row['se_ratio']:.4f}  passes {row['passes']}  CG {row['cg']}  "
                              f"wall MC-REML {mc_wall:.0f} s (with its RHE start), REML {exact_wall:.0f} s",
                              flush=True)
    devs, ratios = np.array([r["dev"] for r in rows]), np.array([r["se_ratio"] for r in rows])
    print(f"\n{len(rows)} estimates: |dev| max {np.abs(devs).max():.3f}, RMS {np.sqrt(np.mean(devs ** 2)):.3f} "
          f"(theory 1/sqrt(T) = {args.mc_samples ** -0.5:.3f}), share |dev| < 0.1: {np.mean(np.abs(devs) < 0.1):.2f}; "
          "SE ratio "
          f"{ratios.min():.4f}..{ratios.max():.4f}")
    Path(args.workdir, f"agreement_T{args.mc_samples}.json").write_text(json.dumps(rows, indent=1))


def replicate(task: tuple[int, int, int, str]) -> list[tuple[float, float, float, float]]:
    """(MC-REML ĥ², its SE, REML ĥ², its SE) of each trait of data set ``seed`` (its store removed after)."""
    seed, n, m, workdir = task
    folder = Path(workdir) / f"replicate_{seed}"
    store, covariate = simulated(folder, n=n, m=m, seed=seed)
    mc = api.fit(store, method="MC-REML", pcs=PCS, qcovar=covariate, mc_reml=api.MCRemlSettings(seed=seed),
                 progress=False)
    exact = api.fit(store, method="REML", pcs=0, qcovar=with_pcs(store, covariate), progress=False)
    shutil.rmtree(folder)
    assert all(fit.converged for fit in mc.traits)
    return [(a.h2, a.h2_se, b.h2, b.h2_se) for a, b in zip(mc.traits, exact.traits, strict=True)]


def replicates(args: argparse.Namespace) -> None:
    tasks = [(seed, args.samples, args.markers, args.workdir) for seed in range(1, args.replicates + 1)]
    results, seconds = run_replicates(replicate, tasks, jobs=args.jobs)  # (R, traits, 4)
    rng = np.random.default_rng(0)
    print(f"{args.replicates} data sets of {args.samples} x {args.markers}, {PCS} PCs and a covariate, T = "
          f"{api.MCRemlSettings().mc_samples}, MC seed = data set ({seconds:.0f} s, {args.jobs} processes)")
    print(f"{'true h2':>8}{'SD MC-REML':>12}{'SD REML':>9}{'SD ratio':>10}{'95% bootstrap':>17}{'SE ratio':>10}"
          f"{'RMS dev':>9}{'mean MC':>9}{'mean REML':>10}")
    for j, truth in enumerate(TRUE_H2):
        mc, mc_se, exact, exact_se = results[:, j].T
        ratio = mc.std(ddof=1) / exact.std(ddof=1)
        draws = rng.integers(0, len(mc), (2000, len(mc)))
        boot = mc[draws].std(axis=1, ddof=1) / exact[draws].std(axis=1, ddof=1)
        low, high = np.percentile(boot, [2.5, 97.5])
        print(f"{truth:>8.2f}{mc.std(ddof=1):>12.4f}{exact.std(ddof=1):>9.4f}{ratio:>10.4f}{low:>9.4f}..{high:.4f}"
              f"{np.mean(mc_se / exact_se):>10.4f}{np.sqrt(np.mean(((mc - exact) / exact_se) ** 2)):>9.3f}"
              f"{mc.mean():>9.4f}{exact.mean():>10.4f}")


def scale(args: argparse.Namespace) -> None:
    store, covariate = simulated(Path(args.workdir), n=args.samples, m=args.markers, seed=1)
    out = Path(args.workdir) / f"scale_{args.samples}x{args.markers}"
    run = measured([sys.executable, "-m", "dask_h2", "--quiet", "fit", str(store), "--method", "mc-reml", "--pcs",
                    str(PCS), "--qcovar", str(covariate), "--memory-limit", args.memory_limit, "--out", str(out)])
    report = json.loads(out.with_suffix(".json").read_text())
    passes = report["passes_over_genotypes"]
    print(f"MC-REML {args.samples} x {args.markers}: wall {run['wall']:.0f} s, CPU {run['cpu']:.0f} s, peak RSS "
          f"{gib(run['peak_rss'])}, passes over the genotypes {passes} (+ {report['pc_sketch_passes']} PC sketch "
          f"passes and the RHE start), CG iterations {report['cg_iterations']}", flush=True)
    for fit in report["traits"]:
        print(f"  {fit['name']}: h2 {fit['h2']:.4f} ({fit['h2_se']:.4f}), converged {fit['converged']}")
    one = one_pass_seconds(store, columns=len(report["traits"]) * (report["mc_samples"] + 1),
                           memory_limit=args.memory_limit)[0]
    ratio = run["wall"] / (passes * one)
    print(f"one pass with {len(report['traits']) * (report['mc_samples'] + 1)} columns: {one:.1f} s; passes x one "
          f"pass = {passes * one:.0f} s against the fit's wall {run['wall']:.0f} s (ratio {ratio:.2f}; the rest: "
          "reading, the RHE start, the PCs; the AI solves' passes have K + 1 columns per trait, not T + 1)")


def one_pass_seconds(store: Path, *, columns: int, memory_limit: str) -> tuple[float, float]:
    """Median wall and CPU seconds (of this process: the local threads) of 3 passes with ``columns``
    right-hand sides over the genotypes held in memory."""
    from dask_h2.kinship.grm import marker_chunks
    from dask_h2.kinship.partition import Partition
    from dask_h2.kinship.selection import Selection
    from dask_h2.mcreml.passes import hold_genotypes, product_pass
    from dask_h2.checks import parse_memory
    from dask_h2.planning import mcreml_plan
    import dask.array as da

    root = zarr.open_group(store, mode="r")
    n, m = root["call_dosage"].shape[1], root["call_dosage"].shape[0]
    plan = mcreml_plan(n, m, columns=columns, components=1, memory_limit=parse_memory(memory_limit),
                       store_chunk=root["call_dosage"].chunks[0])
    dosage = marker_chunks(da.from_zarr(root["call_dosage"]), plan.chunk_markers, selected=None)[0]
    held = hold_genotypes(dosage, selected=np.ones(m, bool), scale=Selection().scale, qc=Selection().qc,
                          partition=Partition(), plan=plan, progress=False)
    x = np.random.default_rng(0).standard_normal((n, columns))
    walls, cpus = [], []
    for _ in range(3):
        start, cpu = time.perf_counter(), time.process_time()
        product_pass(held, x, weights=np.ones((1, columns)), columns=np.arange(columns), split=False)
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return float(np.median(walls)), float(np.median(cpus))


def one_pass(args: argparse.Namespace) -> None:
    """The cost model's inputs: CPU per pass at B = 2 and B = 101, split into a part per genotype and a
    part per genotype and right-hand side."""
    store, _ = simulated(Path(args.workdir), n=args.samples, m=args.markers, seed=1)
    genotypes = args.samples * args.markers
    (wall_2, cpu_2), (wall_101, cpu_101) = (one_pass_seconds(store, columns=b, memory_limit=args.memory_limit)
                                            for b in (2, 101))
    per_column = (cpu_101 - cpu_2) / 99 / genotypes
    fixed = cpu_2 / genotypes - 2 * per_column
    print(f"one pass at {args.samples} x {args.markers}: B = 2 CPU {cpu_2:.2f} s (wall {wall_2:.2f} s), B = 101 CPU "
          f"{cpu_101:.2f} s (wall {wall_101:.2f} s): {fixed * 1e9:.2f} ns per genotype + {per_column * 1e9:.3f} ns "
          f"per genotype and right-hand side ({4e-9 / per_column * 1e9 / 1e9:.0f} GFlop/s per CPU second)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--markers", type=int, default=20000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--mc-seeds", type=int, default=1)
    parser.add_argument("--mc-samples", type=int, default=api.MCRemlSettings().mc_samples, help="T of MC-REML")
    parser.add_argument("--components", type=lambda s: [int(x) for x in s.split(",")], default=[1, 3])
    parser.add_argument("--workdir", default="/tmp/dask-h2-mcreml")
    parser.add_argument("--scale", action="store_true")
    parser.add_argument("--one-pass", action="store_true", help="only the one-pass CPU times of the cost model")
    parser.add_argument("--memory-limit", default="8GB")
    parser.add_argument("--replicates", type=int, default=0, help="SD(MC-REML)/SD(REML) over this many data sets")
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    (one_pass if args.one_pass else scale if args.scale else replicates if args.replicates else agreement)(args)


if __name__ == "__main__":
    main()
