"""The moments path on a store: randomized Haseman–Elston with jackknife SEs, no n × n matrix; PCGC for
case-control traits (:mod:`dask_h2.moments.pcgc`) and the genetic correlation of trait pairs
(:mod:`dask_h2.moments.pairs`) from the same pass.

Passes over the genotypes (:mod:`dask_h2.moments.passes`):

1. with PCs, sketch passes for the top PCs (:mod:`dask_h2.kinship.pcs`), cached in the store;
2. one pass over every chunk: the marker table, and the products with the probes, the projected
   traits and the bases of the fixed effects; each chunk writes its part of every jackknife
   block's sums to the run's scratch (:mod:`dask_h2.scratch`; 4·J·K·n·B bytes for one
   missingness pattern), removed at the end;
3. a pass over that scratch (not the genotypes) for the blocks' jackknife terms.

Jackknife blocks hold equal numbers of consecutive markers (±1; counted before QC, as RHE-mc
counts its QC-filtered input).

Samples, marker QC, covariates and missingness patterns follow the exact path: the
same :class:`dask_h2.kinship.selection.Selection`, covariate files and rules (a trait is fitted
on the samples where it and every covariate are observed; PCs are those of all samples). Each
group of samples (:class:`SampleGroups`: a missingness pattern, a pair's complete samples, a
disease) has probes of its own.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import dask.array as da
import numpy as np
from distributed import Client
from threadpoolctl import threadpool_limits

from dask_h2.cluster import using
from dask_h2.errors import InputError, ParameterError
from dask_h2.kinship.grm import count_markers, marker_chunks, sample_columns
from dask_h2.kinship.partition import Partition, check_components, parse_partition
from dask_h2.kinship.king import analysed_samples, describe_relatives
from dask_h2.kinship.selection import Selection, variant_mask
from dask_h2.kinship.standardize import USED
from dask_h2.kinship.pcs import principal_components
from dask_h2.kinship.tasks import chunk_bounds, single_threaded_blas
from dask_h2.moments.equations import (GroupStatistics, MomentEstimates, Solution, fit_moments,
                                       jackknife_blocks, residual_sums, solve_with_replicates)
from dask_h2.moments.pairs import PairEstimates, fit_pairs
from dask_h2.moments.passes import Projection, block_pass, block_pieces, moments_pass
from dask_h2.liability import RISK_MODEL, CaseProbabilities, case_probabilities, disease_fit, disease_traits
from dask_h2.moments.pcgc import PCGCStatistics, fit_pcgc, fit_pcgc_pair
from dask_h2.moments.settings import MomentsSettings
from dask_h2.scratch import scratch_array
from dask_h2.kinship.sketch import sketch_width
from dask_h2.planning import ComputePlan, OverBudget, moments_plan
from dask_h2.results import ComponentFit, FitReport, PairComponentFit, PairFit, TraitFit
from dask_h2.store import open_store, read_strings
from dask_h2.traits import (check_complete_cases, design_matrix, estimable, parse_pairs, read_traits, screen_traits,
                            store_traits)


def fit_store(store: str | Path, *, selection: Selection = Selection(), settings: MomentsSettings = MomentsSettings(),
              partition: str | Path | Partition | None = None, pcs: int = 10, covar: str | Path | None = None,
              qcovar: str | Path | None = None, method: str = "RHE",
              prevalence: str | float | Sequence[float | None] | None = None, pairs: str | None = None,
              memory_limit: int | None = None, client: Client | None = None, progress: bool = True) -> FitReport:
    """h² of every trait in ``store`` by randomized Haseman–Elston (``method="RHE"``, see the module
    docstring) or, for case-control traits with a ``prevalence`` each, by PCGC on the liability scale
    (``method="PCGC"``, :mod:`dask_h2.moments.pcgc`), one variance component per part of ``partition``
    (``maf:e0,e1,…`` or a file; None = one component); with ``pairs`` (``"T1,T2"`` or ``"all"``) also the
    genetic correlation of each pair on its complete samples (RHE, :mod:`dask_h2.moments.pairs`; PCGC,
    :func:`dask_h2.moments.pcgc.fit_pcgc_pair`: each disease's h² and risk model on its own samples, their
    cross term on the samples with both), in the same pass.

    ``memory_limit`` (bytes, default 2 GiB; per worker on a cluster) bounds the passes' working
    memory (:func:`dask_h2.planning.moments_plan`)."""
    root = open_store(store)
    variant_id = read_strings(root, "variant_id")
    variants = variant_mask(variant_id, selection)
    partition = partition if isinstance(partition, Partition) else parse_partition(partition, variant_id)
    stored_traits = read_traits(root, store)  # checked before the relatives are looked for
    samples, relatives = analysed_samples(store, selection, memory_limit=memory_limit, client=client, progress=progress)
    traits = store_traits(store, np.flatnonzero(samples), covar=covar, qcovar=qcovar, traits=stored_traits)
    n = int(samples.sum())
    if not 0 <= pcs <= n - 3:  # a fit needs 2 samples beyond its fixed effects (intercept and PCs at least)
        raise ParameterError(f"{{pcs}}: must be between 0 and {n - 3} for {n} samples", pcs=pcs)
    covariates = traits.covariates
    values, prevalences = traits.values, None
    if method == "PCGC":
        values, prevalences = disease_traits(values, traits.names, prevalence=prevalence, covariates=covariates.values)
    pair_list = [] if pairs is None else parse_pairs(pairs, traits.names)
    plan_groups = sample_groups(values, ~np.isnan(covariates.values).any(axis=1), weighted=method == "PCGC",
                                pairs=pair_list, names=traits.names)
    n_fixed = 1 + pcs + covariates.values.shape[1]
    n_groups, n_weighted = len(plan_groups.masks), (len(plan_groups.masks) if method == "PCGC" else 0)
    probe_columns = settings.n_probes * n_groups + n_weighted * (n_fixed + 1) + (1 if n_weighted else 0)
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
                right_columns=probe_columns + values.shape[1] + 2 * len(pair_list) + n_fixed * (n_groups + n_weighted),
                memory_limit=memory_limit,
                store_chunk=root["call_dosage"].chunks[0],
            )
        except OverBudget as exc:
            raise exc.parameter_error(memory_limit=memory_limit, n_probes=settings.n_probes) from None
        dosage = marker_chunks(sample_columns(root["call_dosage"], samples, chunk_markers=plan.chunk_markers),
                               plan.chunk_markers, selected=variants)[0]
        components = principal_components(store, dosage, variants=variants, selection=selection, samples=samples,
                                          pcs=pcs, passes=settings.pc_passes, markers=settings.pc_markers, plan=plan,
                                          progress=progress)
        X, columns = design_matrix(components.vectors, covariates.values, covariate_names=covariates.names)
        with threadpool_limits(limits=1, user_api="blas"):  # a least-squares fit per trait: small products
            kept, refused = screen_traits(values, traits.names, X=X)  # constant, infinite, too few samples
        kept = estimable([*refused, *kept])[0]
        if pair_list and len(kept) < values.shape[1]:
            raise InputError(f"{refused[0].reason}: cannot be fitted, so neither can its pairs")
        fits, pair_fits, table, used = _fit_traits(
            store, dosage, variants, block, values, traits.names, X, columns, partition, selection, settings, plan,
            progress, groups=plan_groups, kept=kept, prevalence=prevalences)
    _, counts = count_markers(table)
    counts["outside_partition"] = int((table[:, 1] == USED).sum() - used)
    extra = {**selection.describe(counts), "n_samples_removed": traits.n_samples_removed,
             **describe_relatives(relatives), "fixed_effects": columns,
             "random_vectors": settings.n_probes, "seed": settings.seed, "jackknife_blocks": int(block.max() + 1),
             "components": list(partition.names), "pc_eigenvalues": components.values.tolist(),
             "pc_markers": components.n_markers, "passes_over_genotypes": 1, "pc_sketch_passes": components.passes}
    if method == "PCGC":
        extra["risk_model"] = RISK_MODEL
    return FitReport(traits=fits, n_samples=n, n_markers_used=used, n_markers_dropped=len(variant_id) - used,
                     scale=selection.scale, pcs=pcs, method=method, extra=extra, not_estimable=refused,
                     pairs=pair_fits)


@dataclass(frozen=True, kw_only=True)
class SampleGroups:
    """The sample groups of a moments fit: ``masks`` (G masks (n,) bool), the group ``of_trait`` (k,) of each
    trait's univariate fit and ``of_pair`` {(j₁, j₂): group} of each pair (its complete samples); with
    ``weighted`` (PCGC) every trait has a group of its own, ``disease`` (G,) names the disease whose weights
    u each group carries, and a pair of diseases has a group on the probes of a group of one of its diseases
    on the pair's samples (``sources``: the group whose probes each group uses)."""

    masks: list[np.ndarray]
    of_trait: list[int]
    of_pair: dict[tuple[int, int], int]
    weighted: bool
    sources: list[int]
    disease: list[int] = field(default_factory=list)


def sample_groups(traits: np.ndarray, covariates_observed: np.ndarray, *, weighted: bool,
                  pairs: list[tuple[int, int]], names: np.ndarray) -> SampleGroups:
    """:class:`SampleGroups` of ``traits`` (n, k; NaN = missing) whose covariates are observed on
    ``covariates_observed`` (n,): one group per missingness pattern (per trait when ``weighted``), and one
    per pair's complete samples unless they are a group already. ``weighted``: a pair of diseases has a
    group carrying the second disease's weights on the probes of the first's own group when its samples are
    the pair's (or the other way round), else on the probes of a group of its own (the first disease's
    weights on the pair's samples). Raises :class:`InputError` for a pair with fewer than 3 samples in
    common."""
    observed = np.ascontiguousarray((~np.isnan(traits) & covariates_observed[:, None]).T)  # (k, n)
    masks: list[np.ndarray] = []
    sources: list[int] = []
    disease: list[int] = []
    first_of: dict[bytes, int] = {}  # the first group on each set of samples

    def group_of(mask: np.ndarray, new: bool = False, source: int | None = None, of: int | None = None) -> int:
        key = np.packbits(mask).tobytes()
        if not new and key in first_of:
            return first_of[key]
        first_of.setdefault(key, len(masks))
        masks.append(mask)
        sources.append(len(masks) - 1 if source is None else source)
        if of is not None:
            disease.append(of)
        return len(masks) - 1

    of_trait = [group_of(observed[j], new=weighted, of=j) for j in range(traits.shape[1])]
    of_pair = {}
    for a, b in pairs:
        both = observed[a] & observed[b]
        if both.sum() < 3:
            raise InputError(f"traits {names[a]} and {names[b]}: {int(both.sum())} samples with both traits and every "
                             "covariate; their genetic correlation needs samples in common")
        if not weighted:
            of_pair[(a, b)] = group_of(both)
            continue
        first, second = (b, a) if np.array_equal(observed[b], both) else (a, b)
        source = of_trait[first] if np.array_equal(observed[first], both) else group_of(both, new=True, of=first)
        of_pair[(a, b)] = group_of(both, new=True, source=source, of=second)
    return SampleGroups(masks=masks, of_trait=of_trait, of_pair=of_pair, weighted=weighted, sources=sources,
                        disease=disease)


class _Columns:
    """Positions of named blocks of columns in the right-hand side, in the order they are added."""

    def __init__(self) -> None:
        self.blocks: list[np.ndarray] = []
        self.start: dict = {}
        self.width = 0

    def add(self, key, values: np.ndarray) -> None:
        self.start[key] = self.width
        self.blocks.append(values)
        self.width += values.shape[1]

    def of(self, key, products: np.ndarray, width: int = 1) -> np.ndarray:
        """The ``width`` columns of ``key`` in ``products`` (m, w) as float64."""
        return products[:, self.start[key]:self.start[key] + width].astype(np.float64)


@single_threaded_blas  # the driver's many small products: threaded BLAS only waits for its threads there
def _fit_traits(store: str | Path, dosage: da.Array, variants: np.ndarray, block: np.ndarray, traits: np.ndarray,
                names: np.ndarray, X: np.ndarray, columns: list[str], partition: Partition, selection: Selection,
                settings: MomentsSettings, plan: ComputePlan, progress: bool, *, groups: SampleGroups,
                kept: list[int], prevalence: list[float] | None
                ) -> tuple[list[TraitFit], list[PairFit], np.ndarray, int]:
    """Both moments passes for every trait and pair at once (one set of probes per sample group): the
    fits, the pairs' fits, the marker table (M, 4) and the number of markers used."""
    n, probes = X.shape[0], settings.n_probes
    observed_traits = np.nan_to_num(traits)
    bases, weights, risks = [], [], {}
    for g, mask in enumerate(groups.masks):
        if groups.sources[g] != g:  # a pair of diseases: the form of one on the probes of the other
            bases.append(bases[groups.sources[g]])
            weights.append(np.where(mask, weights[groups.of_trait[groups.disease[g]]], 0.0))
            continue
        if groups.weighted:
            members = [groups.disease[g]]
        else:
            members = [j for j in kept if groups.of_trait[j] == g] or [a for (a, b), h in groups.of_pair.items()
                                                                      if h == g]
        if not members or members[0] not in kept:  # the group of a trait left out (not estimable): no probes
            bases.append(np.zeros_like(X))
            weights.append(None)
            continue
        what = check_complete_cases(mask, names[members[0]], X=X, columns=columns)
        basis = np.zeros_like(X)
        basis[mask] = np.linalg.qr(X[mask])[0]
        bases.append(basis)
        if not groups.weighted:
            weights.append(None)
            continue
        (j,) = members
        if g == groups.of_trait[j]:  # the disease's own samples: its risk model
            try:
                risks[j] = case_probabilities(traits[mask, j], prevalence=prevalence[j], X=X[mask])
            except (ValueError, np.linalg.LinAlgError) as exc:
                raise InputError(f"{what}: the risk model cannot be fitted: {exc}") from None
            weights.append(np.zeros(n))
            weights[-1][mask] = risks[j].u
        else:  # its weights on a pair's samples, for probes of their own
            weights.append(np.where(mask, weights[groups.of_trait[j]], 0.0))
    projection = Projection(masks=np.column_stack(groups.masks), bases=tuple(bases), n_probes=probes,
                            weights=tuple(weights), sources=tuple(groups.sources))
    z = np.random.default_rng([settings.seed, 1]).standard_normal((n, probes))
    right = _Columns()
    for g in projection.probed:
        u = projection.weights[g]
        right.add(("probes", g), projection.project(z if u is None else u[:, None] * z, g))
    for g in projection.weighted:
        right.add(("sums", g), bases[g])
    scaled = {}  # v = u∘z of each PCGC trait over all samples
    for j in kept:
        g = groups.of_trait[j]
        if groups.weighted:
            scaled[j] = np.zeros(n)
            scaled[j][groups.masks[g]] = risks[j].u * risks[j].z
            right.add(("trait", g, j), projection.project(scaled[j][:, None], g))
        else:
            right.add(("trait", g, j), projection.project(observed_traits[:, [j]], g))

    def home(g: int, j: int) -> int:
        """The group whose column holds trait j on group g's samples: its own when those are its samples."""
        if groups.weighted and not np.array_equal(groups.masks[g], groups.masks[groups.of_trait[j]]):
            return groups.sources[g]
        return groups.of_trait[j] if groups.weighted else g

    for (a, b), g in groups.of_pair.items():
        for j in (a, b):
            if ("trait", home(g, j), j) not in right.start:
                values = scaled[j][:, None] if groups.weighted else observed_traits[:, [j]]
                right.add(("trait", home(g, j), j), projection.project(values, home(g, j)))
    for g in range(len(groups.masks)):
        right.add(("basis", g), bases[g])
    disease_groups = {(j, j): groups.of_trait[j] for j in sorted(scaled)}  # of each disease and pair of diseases
    disease_groups.update({pair: g for pair, g in groups.of_pair.items() if groups.weighted})
    weighted = {(a, b): scaled[a] * scaled[b] for a, b in disease_groups}  # v_a∘v_b (0 outside the samples of both)
    for key, values in weighted.items():
        right.add(("weighted basis", key), values[:, None] * bases[disease_groups[key]])
    square_right = np.column_stack(list(weighted.values())) if weighted else None
    per_chunk, per_block = block_pieces(chunk_bounds(dosage.chunks[0]), block)
    shape = (sum(map(len, per_block)), partition.size, n, projection.n_columns)
    with scratch_array(store, shape) as scratch:
        first = moments_pass(dosage, selected=variants, block=block, scale=selection.scale, qc=selection.qc,
                             partition=partition, right=np.hstack(right.blocks), square_right=square_right,
                             projection=projection, scratch=scratch, pieces=per_chunk, plan=plan, progress=progress)
        component = first.component
        check_components(np.bincount(component, minlength=partition.size), partition)
        local, cross = block_pass(scratch, pieces=per_block, projection=projection,
                                  projected=projection.projected(first.totals),
                                  diagonals=projection.diagonals(first.totals), plan=plan, progress=progress)
    products, c = first.products, X.shape[1]

    @functools.cache
    def trace_shares(g: int) -> np.ndarray:
        return first.squares[:, g] - np.sum(right.of(("basis", g), products, c) ** 2, axis=1)

    @functools.cache
    def column(g: int, j: int) -> np.ndarray:
        return right.of(("trait", g, j), products)[:, 0]

    def solve(g: int, fits: list[tuple[int, int]]) -> Solution:
        """The fits (a, b) (a = b: one trait; else the cross terms of two) on group g, solved together."""
        traits_on = sorted({j for fit in fits for j in fit})
        at = {j: i for i, j in enumerate(traits_on)}
        pairs = np.array([[at[a], at[b]] for a, b in fits])
        projected = projection.project(observed_traits[:, traits_on], g)
        sums = residual_sums(np.column_stack([column(g, j) for j in traits_on]), pairs, block=first.block,
                             component=component, n_blocks=cross.shape[0], n_components=partition.size)
        stats = GroupStatistics(component=component, block=first.block, residual_sums=sums,
                                trace_shares=trace_shares(g), cross_products=cross[..., g],
                                block_products=local[..., g], yy=(projected.T @ projected)[pairs[:, 0], pairs[:, 1]],
                                n_samples=int(groups.masks[g].sum()), n_fixed=c, n_probes=probes)
        try:
            return solve_with_replicates(stats)
        except ValueError as exc:
            a, b = fits[0]
            raise InputError(f"trait {names[a]}: {exc}" if a == b else f"traits {names[a]} and {names[b]}: {exc}"
                             ) from None

    def pcgc_statistics(a: int, b: int, g: int) -> PCGCStatistics:
        """Diseases a and b (a = b: one disease) on group g: (w_mᵀPv_a)(w_mᵀPv_b) − Σ_i v_a,i v_b,i (Pw_m)_i²."""
        q, weighted_q = right.of(("basis", g), products, c), right.of(("weighted basis", (a, b)), products, c)
        squares = products[:, right.width + list(weighted).index((a, b))].astype(np.float64)
        gram = bases[g].T @ (weighted[(a, b)][:, None] * bases[g])  # QᵀV_aV_bQ
        diagonal = squares - 2.0 * np.sum(q * weighted_q, axis=1) + np.sum((q @ gram) * q, axis=1)
        x = right.of(("trait", home(g, a), a), products)[:, 0] * right.of(("trait", home(g, b), b), products)[:, 0]
        return PCGCStatistics(component=component, block=first.block, residual_products=x - diagonal,
                              cross_products=cross[..., g], block_products=local[..., g], n_probes=probes)

    fits_of: dict[int, list[tuple[int, int]]] = {}  # each group's Haseman–Elston fits, solved together
    if not groups.weighted:
        for j in kept:
            fits_of.setdefault(groups.of_trait[j], []).append((j, j))
        for (a, b), g in groups.of_pair.items():
            fits_of.setdefault(g, []).extend([(a, a), (b, b), (a, b)])
    position = {g: {fit: i for i, fit in enumerate(dict.fromkeys(fits))} for g, fits in fits_of.items()}
    solutions = {g: solve(g, list(at)) for g, at in position.items()}

    def of(g: int, fits: list[tuple[int, int]]) -> Solution:
        return solutions[g].take(np.array([position[g][fit] for fit in fits]))

    fits = []
    for j in kept:
        g = groups.of_trait[j]
        if groups.weighted:
            stats = pcgc_statistics(j, j, g)
            fits.append(_disease_fit(str(names[j]), stats, risks[j], prevalence=prevalence[j], partition=partition,
                                     n_fixed=c))
        else:
            fits.append(_trait_fit(str(names[j]), position[g][(j, j)], solutions[g], partition,
                                   n=int(groups.masks[g].sum()), n_fixed=c))
    estimates = {}
    for g in position:
        pairs = [pair for pair, h in groups.of_pair.items() if h == g]
        if pairs:
            estimates.update(zip(pairs, fit_pairs(of(g, [(a, a) for a, _ in pairs]), of(g, [(b, b) for _, b in pairs]),
                                                  cross=of(g, pairs))))
    pair_fits = []
    for (a, b), g in groups.of_pair.items():
        if groups.weighted:
            pair_fits.append(_disease_pair_fit(
                (str(names[a]), str(names[b])), pcgc_statistics(a, a, groups.of_trait[a]),
                pcgc_statistics(b, b, groups.of_trait[b]),
                pcgc_statistics(a, b, g), (risks[a], risks[b]), prevalence=(prevalence[a], prevalence[b]),
                partition=partition, n_common=int(groups.masks[g].sum())))
            continue
        pair_fits.append(_pair_fit((str(names[a]), str(names[b])), estimates[(a, b)], solutions[g].counts, partition,
                                   n=int(groups.masks[g].sum())))
    return fits, pair_fits, first.table, int(component.size)


def _trait_fit(name: str, fit: int, solution: Solution, partition: Partition, *, n: int, n_fixed: int) -> TraitFit:
    estimates: MomentEstimates = fit_moments(solution, fit)
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
        n=n,
        n_fixed=n_fixed,
        components=components,
    )


def _disease_fit(name: str, stats: PCGCStatistics, risk: CaseProbabilities, *, prevalence: float,
                 partition: Partition, n_fixed: int) -> TraitFit:
    try:
        estimates = fit_pcgc(stats, var_t=risk.var_t)
    except ValueError as exc:
        raise InputError(f"trait {name}: {exc}") from None
    return disease_fit(name, estimates, risk=risk, prevalence=prevalence, n_fixed=n_fixed,
                       component_names=partition.names)


def _pair_fit(names: tuple[str, str], estimates: PairEstimates, counts: np.ndarray, partition: Partition,
              n: int) -> PairFit:
    t = estimates.totals

    def matrix(values: np.ndarray) -> list[list[float]]:
        return [[float(values[0]), float(values[2])], [float(values[2]), float(values[1])]]

    components = [PairComponentFit(name=partition.names[k], n_markers=int(counts[k]), vg=matrix(estimates.vg[k]),
                                   vg_se=matrix(estimates.vg_se[k]), rg=float(estimates.rg_k[k]),
                                   rg_se=float(estimates.rg_k_se[k])) for k in range(partition.size)]
    return PairFit(
        traits=names, method="RHE", path="moments",
        vg=[[t["V(G)_tr1"][0], t["C(G)_tr12"][0]], [t["C(G)_tr12"][0], t["V(G)_tr2"][0]]],
        vg_se=[[t["V(G)_tr1"][1], t["C(G)_tr12"][1]], [t["C(G)_tr12"][1], t["V(G)_tr2"][1]]],
        ve=[[t["V(e)_tr1"][0], t["C(e)_tr12"][0]], [t["C(e)_tr12"][0], t["V(e)_tr2"][0]]],
        ve_se=[[t["V(e)_tr1"][1], t["C(e)_tr12"][1]], [t["C(e)_tr12"][1], t["V(e)_tr2"][1]]],
        vp=[t["Vp_tr1"][0], t["Vp_tr2"][0]], vp_se=[t["Vp_tr1"][1], t["Vp_tr2"][1]],
        h2=[t["V(G)/Vp_tr1"][0], t["V(G)/Vp_tr2"][0]], h2_se=[t["V(G)/Vp_tr1"][1], t["V(G)/Vp_tr2"][1]],
        rg=t["rG"][0], rg_se=t["rG"][1], re=t["rE"][0], n=2 * n, n_per_trait=[n, n], n_common=n,
        residual_covariance=True, components=components if partition.size > 1 else [])


def _disease_pair_fit(names: tuple[str, str], first: PCGCStatistics, second: PCGCStatistics, cross: PCGCStatistics,
                      risks: tuple[CaseProbabilities, CaseProbabilities], *, prevalence: tuple[float, float],
                      partition: Partition, n_common: int) -> PairFit:
    """Two diseases' PCGC fit on the liability scale: ``vg`` holds h²₁, h²₂ (each on its own samples) and
    their genetic covariance (on the ``n_common`` samples of both; liability variances 1 given the fixed
    effects); no residual terms, Vp or likelihood."""
    try:
        estimates = fit_pcgc_pair(first, second, cross=cross)
    except ValueError as exc:
        raise InputError(f"traits {names[0]} and {names[1]}: {exc}") from None
    h2, se = estimates.totals, estimates.totals_se
    counts = np.bincount(first.component, minlength=partition.size)
    components = [PairComponentFit(
        name=partition.names[k], n_markers=int(counts[k]),
        vg=[[float(estimates.h2[k, 0]), float(estimates.covariance[k])],
            [float(estimates.covariance[k]), float(estimates.h2[k, 1])]],
        vg_se=[[float(estimates.h2_se[k, 0]), float(estimates.covariance_se[k])],
               [float(estimates.covariance_se[k]), float(estimates.h2_se[k, 1])]],
        rg=float(estimates.rg_k[k]), rg_se=float(estimates.rg_k_se[k])) for k in range(partition.size)]
    n = [int(risk.u.size) for risk in risks]
    return PairFit(
        traits=names, method="PCGC", path="moments", vg=[[h2[0], h2[2]], [h2[2], h2[1]]],
        vg_se=[[se[0], se[2]], [se[2], se[1]]], ve=None, ve_se=None, vp=None, vp_se=None, h2=[h2[0], h2[1]],
        h2_se=[se[0], se[1]], rg=estimates.rg, rg_se=estimates.rg_se, re=None, n=sum(n), n_per_trait=n,
        n_common=n_common, residual_covariance=False, components=components if partition.size > 1 else [],
        prevalence=list(prevalence), case_fraction=[risks[0].case_fraction, risks[1].case_fraction],
        h2_liability=[h2[0], h2[1]], h2_liability_se=[se[0], se[1]])
