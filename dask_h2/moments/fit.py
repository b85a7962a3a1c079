"""The moments path on a store: randomized Haseman–Elston with jackknife SEs, no n × n matrix.

Passes over the genotypes (:mod:`dask_h2.moments.passes`):

1. with PCs, sketch passes for the top PCs (:mod:`dask_h2.kinship.pcs`), cached in the store;
2. one pass over every chunk: the marker table, and the products with the probes, the projected
   traits and the bases of the fixed effects; each chunk writes its part of every jackknife
   block's sums to the run's scratch (:mod:`dask_h2.moments.scratch`; 4·J·K·n·B bytes for one
   missingness pattern), removed at the end;
3. a pass over that scratch (not the genotypes) for the blocks' jackknife terms.

Jackknife blocks hold equal numbers of consecutive markers (±1; counted before QC, as RHE-mc
counts its QC-filtered input).

Samples, marker QC, covariates and missingness patterns follow the exact path: the
same :class:`dask_h2.kinship.selection.Selection`, covariate files and rules (a trait is fitted
on the samples where it and every covariate are observed; PCs are those of all samples).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dask.array as da
import numpy as np
import zarr
from distributed import Client

from dask_h2.checks import check, integer, non_negative_int, positive_int
from dask_h2.cluster import using
from dask_h2.errors import NAMED, InputError, ParameterError
from dask_h2.kinship.grm import count_markers, marker_chunks
from dask_h2.kinship.partition import Partition, parse_partition
from dask_h2.kinship.selection import Selection, sample_mask, variant_mask
from dask_h2.kinship.standardize import USED
from dask_h2.moments.equations import MIN_BLOCKS, MomentEstimates, TraitStatistics, fit_moments, jackknife_blocks
from dask_h2.moments.passes import Projection, block_pass, block_pieces, chunk_bounds, moments_pass
from dask_h2.kinship.pcs import principal_components
from dask_h2.moments.scratch import scratch_array
from dask_h2.kinship.sketch import sketch_width
from dask_h2.planning import ComputePlan, OverBudget, moments_plan
from dask_h2.results import ComponentFit, FitReport, TraitFit
from dask_h2.store import open_store, read_strings
from dask_h2.traits import (check_full_rank, design_matrix, estimable, missingness_patterns, read_traits,
                            screen_traits, store_traits)


@dataclass(frozen=True, kw_only=True)
class MomentsSettings:
    """The moments estimator's settings: ``n_probes`` B random vectors drawn from ``seed``, ``n_blocks``
    J jackknife blocks, and for the PCs ``pc_passes`` sketch passes over about ``pc_markers`` markers in
    evenly spaced chunks (0 = all).

    Examples
    --------
    >>> MomentsSettings(n_probes=20, seed=7).n_blocks
    100
    """

    n_probes: int = 10
    n_blocks: int = 100
    seed: int = 1
    pc_passes: int = 2
    pc_markers: int = 50_000

    def __post_init__(self) -> None:
        for name, validate in (("n_probes", integer(2)), ("n_blocks", integer(MIN_BLOCKS)),
                               ("seed", non_negative_int), ("pc_passes", positive_int),
                               ("pc_markers", non_negative_int)):
            object.__setattr__(self, name, check(getattr(self, name), validate, parameter=name))


def fit_store(store: str | Path, *, selection: Selection = Selection(), settings: MomentsSettings = MomentsSettings(),
              partition: str | Path | Partition | None = None, pcs: int = 10, covar: str | Path | None = None,
              qcovar: str | Path | None = None, memory_limit: int | None = None, client: Client | None = None,
              progress: bool = True) -> FitReport:
    """h² of every trait in ``store`` by randomized Haseman–Elston (see the module docstring), one
    variance component per part of ``partition`` (``maf:e0,e1,…`` or a file; None = one component).

    ``memory_limit`` (bytes, default 2 GiB; per worker on a cluster) bounds the passes' working
    memory (:func:`dask_h2.planning.moments_plan`)."""
    root = open_store(store)
    sample_id, variant_id = read_strings(root, "sample_id"), read_strings(root, "variant_id")
    samples, variants = sample_mask(sample_id, selection), variant_mask(variant_id, selection)
    partition = partition if isinstance(partition, Partition) else parse_partition(partition, variant_id)
    traits = store_traits(store, np.flatnonzero(samples), covar=covar, qcovar=qcovar, traits=read_traits(root, store))
    n = int(samples.sum())
    if not 0 <= pcs <= n - 3:  # a fit needs 2 samples beyond its fixed effects (intercept and PCs at least)
        raise ParameterError(f"{{pcs}}: must be between 0 and {n - 3} for {n} samples", pcs=pcs)
    covariates = traits.covariates
    n_patterns = len(missingness_patterns(traits.values, covariates.values))
    n_fixed = 1 + pcs + covariates.values.shape[1]
    probe_columns = settings.n_probes * n_patterns
    block = np.full(variants.size, -1)
    try:
        block[variants] = jackknife_blocks(int(variants.sum()), settings.n_blocks)
    except ValueError as exc:
        raise ParameterError(f"{{n_blocks}}: {exc}", n_blocks=settings.n_blocks) from None
    with using(client):
        try:
            plan = moments_plan(
                n,
                root["call_dosage"].shape[0],
                sum_columns=max(partition.size * probe_columns, sketch_width(pcs, n) if pcs else 0),
                right_columns=probe_columns + traits.values.shape[1] + n_fixed * n_patterns,
                memory_limit=memory_limit,
                store_chunk=root["call_dosage"].chunks[0],
            )
        except OverBudget as exc:
            raise exc.parameter_error(memory_limit=memory_limit, n_probes=settings.n_probes) from None
        dosage = marker_chunks(_columns(root, samples), plan.chunk_markers, selected=variants)[0]
        components = principal_components(store, dosage, variants=variants, selection=selection, samples=samples,
                                          pcs=pcs, passes=settings.pc_passes, markers=settings.pc_markers, plan=plan,
                                          progress=progress)
        X, columns = design_matrix(components.vectors, covariates.values, covariate_names=covariates.names)
        kept, refused = screen_traits(traits.values, traits.names, X=X)  # constant, infinite, too few samples
        kept = estimable([*refused, *kept])[0]
        fits, table, used = _fit_traits(store, dosage, variants, block, traits.values[:, kept], traits.names[kept], X,
                                        columns, partition, selection, settings, plan, progress)
    _, counts = count_markers(table)
    counts["outside_partition"] = int((table[:, 1] == USED).sum() - used)
    extra = {**selection.describe(counts), "n_samples_removed": traits.n_samples_removed, "fixed_effects": columns,
             "random_vectors": settings.n_probes, "seed": settings.seed, "jackknife_blocks": int(block.max() + 1),
             "components": list(partition.names), "pc_eigenvalues": components.values.tolist(),
             "pc_markers": components.n_markers, "passes_over_genotypes": 1, "pc_sketch_passes": components.passes}
    return FitReport(traits=fits, n_samples=n, n_markers_used=used, n_markers_dropped=len(variant_id) - used,
                     scale=selection.scale, pcs=pcs, method="RHE", extra=extra, not_estimable=refused)


def _columns(root: zarr.Group, samples: np.ndarray) -> da.Array:
    dosage = da.from_zarr(root["call_dosage"])
    return dosage if samples.all() else dosage[:, np.flatnonzero(samples)]


def _fit_traits(store: str | Path, dosage: da.Array, variants: np.ndarray, block: np.ndarray, traits: np.ndarray,
                names: np.ndarray, X: np.ndarray, columns: list[str], partition: Partition, selection: Selection,
                settings: MomentsSettings, plan: ComputePlan, progress: bool) -> tuple[list[TraitFit], np.ndarray, int]:
    """Both moments passes for every trait at once (one set of probes per missingness pattern):
    the fits, the marker table (M, 4) and the number of markers used."""
    n, size, probes = X.shape[0], partition.size, settings.n_probes
    masks, bases, members = [], [], []
    for key, traits_of_pattern in missingness_patterns(traits, X).items():
        observed = np.frombuffer(key, dtype=bool)
        what = f"trait {names[traits_of_pattern[0]]} ({observed.sum()} samples with the trait and every covariate)"
        check_full_rank(X[observed], columns, what=what)
        basis = np.zeros_like(X)
        basis[observed] = np.linalg.qr(X[observed])[0]
        masks.append(observed)
        bases.append(basis)
        members.append(traits_of_pattern)
    projection = Projection(masks=np.column_stack(masks), bases=tuple(bases), n_probes=probes)
    z = np.random.default_rng([settings.seed, 1]).standard_normal((n, probes))
    observed_traits = np.nan_to_num(traits)
    right = np.hstack([projection.project(z, p) for p in range(len(masks))]
                      + [projection.project(observed_traits[:, members[p]], p) for p in range(len(masks))]
                      + [bases[p] for p in range(len(masks))])
    n_probe_columns = probes * len(masks)
    per_chunk, per_block = block_pieces(chunk_bounds(dosage.chunks[0]), block)
    with scratch_array(store, (sum(map(len, per_block)), size, n, n_probe_columns)) as scratch:
        first = moments_pass(
            dosage,
            selected=variants,
            block=block,
            scale=selection.scale,
            qc=selection.qc,
            partition=partition,
            right=right,
            projection=projection,
            scratch=scratch,
            pieces=per_chunk,
            plan=plan,
            progress=progress,
        )
        component = first.component
        _check_components(component, partition)
        local, cross = block_pass(
            scratch,
            pieces=per_block,
            projection=projection,
            projected=projection.projected(first.totals),
            plan=plan,
            progress=progress,
        )
    fits: dict[int, TraitFit] = {}
    trait_column = n_probe_columns
    basis_column = n_probe_columns + sum(len(m) for m in members)
    for p, traits_of_pattern in enumerate(members):
        within = first.products[:, basis_column:basis_column + X.shape[1]]
        trace_shares = first.squares[:, p] - np.sum(within.astype(np.float64) ** 2, axis=1)
        for j in traits_of_pattern:
            y = projection.project(observed_traits[:, [j]], p)[:, 0]
            stats = TraitStatistics(
                component=component,
                block=first.block,
                residual_products=first.products[:, trait_column].astype(np.float64) ** 2,
                trace_shares=trace_shares,
                cross_products=cross[..., p],
                block_products=local[..., p],
                yy=float(y @ y),
                n_samples=int(masks[p].sum()),
                n_fixed=X.shape[1],
                n_probes=probes,
            )
            fits[j] = _trait_fit(str(names[j]), stats, partition)
            trait_column += 1
        basis_column += X.shape[1]
    return [fits[j] for j in sorted(fits)], first.table, int(component.size)


def _check_components(component: np.ndarray, partition: Partition) -> None:
    """Every component must keep a marker after QC."""
    counts = np.bincount(component, minlength=partition.size)
    if not counts.all():
        empty = partition.names[int(np.flatnonzero(counts == 0)[0])]
        raise ParameterError(f"{{partition}}: component {empty!r} has no markers after QC and monomorphic markers are "
                             "dropped", partition=NAMED)


def _trait_fit(name: str, stats: TraitStatistics, partition: Partition) -> TraitFit:
    try:
        estimates: MomentEstimates = fit_moments(stats)
    except ValueError as exc:
        raise InputError(f"trait {name}: {exc}") from None
    components = [ComponentFit(name=partition.names[k], n_markers=int(estimates.n_markers[k]),
                               sigma2=float(estimates.sigma2[k]), sigma2_se=float(estimates.sigma2_se[k]),
                               h2=float(estimates.h2[k]), h2_se=float(estimates.h2_se[k]))
                  for k in range(partition.size)]
    return TraitFit(
        name=name,
        method="RHE",
        h2=estimates.h2_total,
        h2_se=estimates.h2_total_se,
        sigma_g2=estimates.sigma_g2,
        sigma_g2_se=estimates.sigma_g2_se,
        sigma_e2=float(estimates.sigma2[-1]),
        sigma_e2_se=float(estimates.sigma2_se[-1]),
        vp=estimates.vp,
        vp_se=estimates.vp_se,
        n=stats.n_samples,
        n_fixed=stats.n_fixed,
        components=components,
    )
