"""MC-REML on a store: REML of every trait by Monte Carlo average-information steps (BOLT-REML's
algorithm, :mod:`dask_h2.mcreml.reml`), with no n × n matrix.

Passes over the genotypes, held in memory after one read (:mod:`dask_h2.mcreml.passes`):
with PCs, the sketch passes of the moments path (the same PCs, cached in the store); one pass
for the fixed draws; then per REML iteration one CG solve with the T + 1 right-hand sides of
each trait's score (one pass per CG iteration), one pass for the quadratic forms, and one CG
solve with the K + 1 right-hand sides of the average information. The traits share every pass.

Samples, marker QC, covariates, missingness patterns and K_k = W_k W_kᵀ / M_k are the exact
path's and the moments path's: a trait is fitted on the samples where it and every covariate are
observed (PCs are those of all samples).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from distributed import Client

from dask_h2.cluster import using
from dask_h2.errors import ParameterError
from dask_h2.kinship.grm import count_markers, marker_chunks, sample_columns
from dask_h2.kinship.partition import Partition, check_components, parse_partition
from dask_h2.kinship.pcs import principal_components
from dask_h2.kinship.selection import Selection, sample_mask, variant_mask
from dask_h2.kinship.standardize import USED
from dask_h2.mcreml.passes import draws_pass, hold_genotypes
from dask_h2.mcreml.reml import MonteCarlo, SolverSettings, TraitProblem, TraitState, fit_traits
from dask_h2.mcreml.settings import MCRemlSettings
from dask_h2.mcreml.solve import Projections
from dask_h2.mcreml.steps import standard_errors
from dask_h2.planning import OverBudget, mcreml_plan
from dask_h2.results import ComponentFit, FitReport, TraitFit
from dask_h2.store import open_store, read_strings
from dask_h2.traits import (check_full_rank, design_matrix, estimable, missingness_patterns, read_traits,
                            screen_traits, store_traits)


def fit_store(store: str | Path, *, start: Callable[[], dict[str, np.ndarray]], selection: Selection = Selection(),
              settings: MCRemlSettings = MCRemlSettings(), partition: str | Path | Partition | None = None,
              pcs: int = 10, pc_passes: int = 2, pc_markers: int = 50_000, covar: str | Path | None = None,
              qcovar: str | Path | None = None, max_iter: int = 100, memory_limit: int | None = None,
              client: Client | None = None, progress: bool = True) -> FitReport:
    """h² of every trait in ``store`` by MC-REML (module docstring), one variance component per part of
    ``partition`` (None = one), from the starting h² (K,) of each trait that ``start()`` gives (by name;
    0.25 in all for a trait not in it; called once the memory plan fits), in at most ``max_iter``
    iterations. The PCs are the moments path's (``pc_passes`` sketch passes over about ``pc_markers``
    markers). ``memory_limit`` (bytes, default
    2 GiB; per worker on a cluster) must hold the genotypes (:func:`dask_h2.planning.mcreml_plan`)."""
    root = open_store(store)
    sample_id, variant_id = read_strings(root, "sample_id"), read_strings(root, "variant_id")
    samples, variants = sample_mask(sample_id, selection), variant_mask(variant_id, selection)
    partition = partition if isinstance(partition, Partition) else parse_partition(partition, variant_id)
    traits = store_traits(store, np.flatnonzero(samples), covar=covar, qcovar=qcovar, traits=read_traits(root, store))
    n = int(samples.sum())
    if not 0 <= pcs <= n - 3:
        raise ParameterError(f"{{pcs}}: must be between 0 and {n - 3} for {n} samples", pcs=pcs)
    covariates = traits.covariates
    columns = traits.values.shape[1] * (settings.mc_samples + 1)
    with using(client):
        try:
            plan = mcreml_plan(n, int(variants.sum()), columns=columns, components=partition.size,
                               memory_limit=memory_limit, store_chunk=root["call_dosage"].chunks[0])
        except OverBudget as exc:
            raise exc.parameter_error(memory_limit=memory_limit, mc_samples=settings.mc_samples) from None
        starts = start()
        dosage = marker_chunks(sample_columns(root["call_dosage"], samples, chunk_markers=plan.chunk_markers),
                               plan.chunk_markers, selected=variants)[0]
        components = principal_components(store, dosage, variants=variants, selection=selection, samples=samples,
                                          pcs=pcs, passes=pc_passes, markers=pc_markers, plan=plan, progress=progress)
        X, names = design_matrix(components.vectors, covariates.values, covariate_names=covariates.names)
        kept, refused = screen_traits(traits.values, traits.names, X=X)
        kept = estimable([*refused, *kept])[0]
        genotypes = hold_genotypes(dosage, selected=variants, scale=selection.scale, qc=selection.qc,
                                   partition=partition, plan=plan, progress=progress)
        check_components(genotypes.counts, partition)
        values, trait_names = traits.values[:, kept], traits.names[kept]
        projections, problems = _problems(values, trait_names, X, names, starts, partition.size)
        environment = np.random.default_rng([settings.seed, 2]).standard_normal((n, settings.mc_samples))
        draws = MonteCarlo(environment=environment,
                           genetic=draws_pass(genotypes, seed=settings.seed, n_draws=settings.mc_samples))
        cg = SolverSettings(tolerance=settings.cg_tolerance, max_iter=settings.cg_max_iter)
        states, passes = fit_traits(genotypes, problems, draws=draws, projections=projections,
                                    tolerance=settings.tolerance, max_iter=max_iter, cg=cg)
    fits = [_trait_fit(problem, state, partition, genotypes.counts, settings.mc_samples)
            for problem, state in zip(problems, states)]
    _, counts = count_markers(genotypes.table)
    used = int(genotypes.counts.sum())
    counts["outside_partition"] = int((genotypes.table[:, 1] == USED).sum() - used)
    extra = {**selection.describe(counts), "n_samples_removed": traits.n_samples_removed, "fixed_effects": names,
             "mc_samples": settings.mc_samples, "seed": settings.seed, "cg_tolerance": settings.cg_tolerance,
             "cg_max_iter": settings.cg_max_iter, "tolerance": settings.tolerance,
             "components": list(partition.names), "pc_eigenvalues": components.values.tolist(),
             "pc_markers": components.n_markers, "pc_sketch_passes": components.passes,
             "reml_iterations": {p.name: s.iterations for p, s in zip(problems, states)},
             "cg_iterations": {p.name: s.cg_iterations for p, s in zip(problems, states)},
             "passes_over_genotypes": 2 + passes}
    return FitReport(traits=fits, n_samples=n, n_markers_used=used, n_markers_dropped=len(variant_id) - used,
                     scale=selection.scale, pcs=pcs, method="MC-REML", extra=extra, not_estimable=refused)


def _problems(values: np.ndarray, names: np.ndarray, X: np.ndarray, columns: list[str], start: dict[str, np.ndarray],
              size: int) -> tuple[Projections, list[TraitProblem]]:
    """The missingness patterns' projections and each trait's projected, scaled values."""
    masks, bases, problems = [], [], []
    for key, members in missingness_patterns(values, X).items():
        observed = np.frombuffer(key, dtype=bool)
        what = f"trait {names[members[0]]} ({observed.sum()} samples with the trait and every covariate)"
        check_full_rank(X[observed], columns, what=what)
        basis = np.zeros_like(X)
        basis[observed] = np.linalg.qr(X[observed])[0]
        masks.append(observed)
        bases.append(basis)
        for j in members:
            y = np.where(observed, np.nan_to_num(values[:, j]), 0.0)
            y = y - basis @ (basis.T @ y)
            n_samples, n_fixed = int(observed.sum()), X.shape[1]
            scale = float(y @ y) / (n_samples - n_fixed)
            problems.append(TraitProblem(name=str(names[j]), y=y / np.sqrt(scale), pattern=len(masks) - 1, scale=scale,
                                         n_samples=n_samples, n_fixed=n_fixed,
                                         start=np.asarray(start.get(str(names[j]), np.full(size, 0.25 / size)))))
    order = np.argsort([list(names).index(p.name) for p in problems], kind="stable")
    return Projections(masks=np.column_stack(masks), bases=tuple(bases)), [problems[i] for i in order]


def _trait_fit(problem: TraitProblem, state: TraitState, partition: Partition, counts: np.ndarray,
               mc_samples: int) -> TraitFit:
    theta, scale = state.theta, problem.scale
    if state.information is None:
        nan = np.full(theta.shape[0], np.nan)
        se = {"theta": nan, "h2": nan[1:], "h2_total": np.array(np.nan), "sigma_g": np.array(np.nan),
              "vp": np.array(np.nan)}
    else:
        se = standard_errors(theta, state.information, n_samples_mc=mc_samples)
    vp = theta.sum()
    components = [ComponentFit(name=partition.names[k], n_markers=int(counts[k]), sigma2=float(theta[k + 1] * scale),
                               sigma2_se=float(se["theta"][k + 1] * scale), h2=float(theta[k + 1] / vp),
                               h2_se=float(se["h2"][k])) for k in range(partition.size)]
    return TraitFit(name=problem.name, method="MC-REML", h2=float(theta[1:].sum() / vp), h2_se=float(se["h2_total"]),
                    sigma_g2=float(theta[1:].sum() * scale), sigma_g2_se=float(se["sigma_g"] * scale),
                    sigma_e2=float(theta[0] * scale), sigma_e2_se=float(se["theta"][0] * scale),
                    vp=float(vp * scale), vp_se=float(se["vp"] * scale), n=problem.n_samples,
                    n_fixed=problem.n_fixed, converged=state.converged, cg_residual=state.residual,
                    components=components)
