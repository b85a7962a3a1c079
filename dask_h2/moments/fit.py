"""The moments path on a store: randomized Haseman–Elston with jackknife SEs, no n × n matrix.

Passes over the genotypes (:mod:`dask_h2.moments.passes`):

1. with PCs, ``pc_passes`` sketch passes for the top PCs (:mod:`dask_h2.moments.sketch`) over about
   ``pc_markers`` markers in evenly spaced chunks, cached in ``STORE/rhe`` keyed on the
   samples, markers, QC, scale and PC settings, so that later fits of the same data skip them;
2. one pass over every chunk: the marker table, and the products with the probes, the projected
   traits and the bases of the fixed effects; each chunk writes its part of every jackknife
   block's sums to a scratch array ``STORE/rhe_scratch`` (4·J·K·n·B bytes for one
   missingness pattern), removed at the end;
3. a pass over that scratch (not the genotypes) for the blocks' jackknife terms.

Jackknife blocks are RHE-mc's: equal numbers of consecutive markers (before QC, as RHE-mc
takes QC-filtered input).

Samples, marker QC, covariates and missingness patterns follow the exact path: the
same :class:`dask_h2.kinship.selection.GRMSettings`, covariate files and rules (a trait is fitted
on the samples where it and every covariate are observed; PCs are those of all samples).
"""
from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import dask.array as da
import numpy as np
import psutil
import zarr
from distributed import Client

from dask_h2.cluster import using
from dask_h2.io.covariates import read_covariates
from dask_h2.errors import InputError
from dask_h2.greml.univariate import check_full_rank, design_matrix, estimable, missingness_patterns, screen_traits
from dask_h2.kinship.grm import count_markers, marker_chunks
from dask_h2.moments.equations import (MIN_BLOCKS, ComponentFit, MomentEstimates, MomentsTraitFit, TraitStatistics, fit_moments,
                      jackknife_blocks)
from dask_h2.kinship.partition import Partition, parse_partition
from dask_h2.io.reports import FitReport
from dask_h2.planning import ComputePlan, moments_plan
from dask_h2.moments.passes import Projection, block_pass, block_pieces, chunk_bounds, moments_pass, sketch_pass
from dask_h2.kinship.selection import GRMSettings, cache_key, sample_mask, variant_mask
from dask_h2.moments.sketch import gaussian_start, nystrom_eigen, orthonormal, sketch_width
from dask_h2.kinship.standardize import USED
from dask_h2.store import is_url, open_store, read_strings, read_traits, store_lock

RHE_GROUP = "rhe"  # in the store: the PCs of the moments path, with their key
SCRATCH = "rhe_scratch"  # in the store: each running moments fit's jackknife blocks' sums, one array a run
PC_SEED = 0  # the sketch's own seed: the PCs are the same whatever --seed the probes use
log = logging.getLogger("dask_h2")


@dataclass(frozen=True)
class RHESettings:
    """``n_probes`` B random vectors (``seed``), ``n_blocks`` jackknife blocks, ``partition``
    (``maf:e0,e1,…`` or a file; None = one component), and for the PCs ``pc_passes`` sketch passes
    over about ``pc_markers`` markers in evenly spaced chunks (0 = all)."""

    n_probes: int = 10
    n_blocks: int = 100
    seed: int = 1
    pc_passes: int = 2
    partition: str | Path | None = None
    pc_markers: int = 50_000

    def __post_init__(self) -> None:
        if self.n_probes < 2:
            raise InputError(f"--random-vectors {self.n_probes}: needs at least 2 probe vectors")
        if self.n_blocks < MIN_BLOCKS:
            raise InputError(f"--jackknife-blocks {self.n_blocks}: needs at least {MIN_BLOCKS} blocks")
        if self.pc_passes < 1:
            raise InputError(f"--pc-passes {self.pc_passes}: needs at least 1 pass")
        if self.pc_markers < 0:
            raise InputError(f"--pc-markers {self.pc_markers}: must be 0 (all markers) or more")


@dataclass(frozen=True)
class PrincipalComponents:
    """The top PCs (n, k) of K with their eigenvalues (k,), from ``n_markers`` markers read in
    ``passes`` sketch passes (0 when read from the store's cache)."""

    vectors: np.ndarray
    values: np.ndarray
    n_markers: int
    passes: int


def fit_rhe(store: str | Path, settings: GRMSettings = GRMSettings(), rhe: RHESettings = RHESettings(),
            pcs: int = 10, covar: str | Path | None = None, qcovar: str | Path | None = None,
            progress: bool = True, client: Client | None = None, memory_limit: int | None = None) -> FitReport:
    """h² of every trait in ``store`` by randomized Haseman–Elston (see the module docstring).

    ``memory_limit`` (bytes, default 2 GiB; per worker on a cluster) bounds the passes' working
    memory (:func:`dask_h2.planning.moments_plan`)."""
    root = open_store(store)
    sample_id, variant_id = read_strings(root, "sample_id"), read_strings(root, "variant_id")
    samples, variants = sample_mask(sample_id, settings), variant_mask(variant_id, settings)
    partition = parse_partition(rhe.partition, variant_id)
    traits, names = read_traits(root, store)
    traits = traits[samples]
    n = int(samples.sum())
    if not 0 <= pcs <= n - 3:  # a fit needs 2 samples beyond its fixed effects (intercept and PCs at least)
        raise InputError(f"--pcs {pcs}: must be between 0 and {n - 3} for {n} samples")
    covariates = read_covariates(sample_id[samples], covar, qcovar)
    n_patterns = len(missingness_patterns(traits, covariates.values))
    n_fixed = 1 + pcs + covariates.values.shape[1]
    probe_columns = rhe.n_probes * n_patterns
    block = np.full(variants.size, -1)
    try:
        block[variants] = jackknife_blocks(int(variants.sum()), rhe.n_blocks)
    except ValueError as exc:
        raise InputError(f"--jackknife-blocks {rhe.n_blocks}: {exc}") from None
    with using(client):
        try:
            plan = moments_plan(n, root["call_dosage"].shape[0],
                                max(partition.size * probe_columns, sketch_width(pcs, n) if pcs else 0),
                                probe_columns + traits.shape[1] + n_fixed * n_patterns, memory_limit,
                                root["call_dosage"].chunks[0])
        except ValueError as exc:
            raise InputError(f"--memory-limit: {exc}") from None
        dosage = marker_chunks(_columns(root, samples), plan.chunk_markers, variants)[0]
        components = _principal_components(store, dosage, variants, settings, samples, pcs, rhe, plan, progress)
        X, columns = design_matrix(components.vectors, covariates.values, covariates.names)
        kept, refused = screen_traits(traits, names, X)  # constant, infinite, too few samples: not estimable
        kept = estimable([*refused, *kept])[0]
        fits, table, used = _fit_traits(store, dosage, variants, block, traits[:, kept], names[kept], X, columns,
                                        partition, settings, rhe, plan, progress)
    _, counts = count_markers(table)
    counts["outside_partition"] = int((table[:, 1] == USED).sum() - used)
    extra = {"marker_counts": counts, "maf": settings.qc.maf, "max_missing": settings.qc.max_missing,
             "n_samples_removed": int(samples.size - n), "fixed_effects": columns, "random_vectors": rhe.n_probes,
             "seed": rhe.seed, "jackknife_blocks": int(block.max() + 1), "components": list(partition.names),
             "pc_eigenvalues": components.values.tolist(), "pc_markers": components.n_markers,
             "passes_over_genotypes": 1, "pc_sketch_passes": components.passes}
    return FitReport(fits, n, used, len(variant_id) - used, settings.scale, pcs, "RHE", extra, not_estimable=refused)


def _columns(root: zarr.Group, samples: np.ndarray) -> da.Array:
    dosage = da.from_zarr(root["call_dosage"])
    return dosage if samples.all() else dosage[:, np.flatnonzero(samples)]


def _pc_chunks(n_chunks: int, chunk_markers: int, pc_markers: int) -> list[int]:
    """Evenly spaced chunks holding about ``pc_markers`` markers (all when 0 or when that is more)."""
    wanted = n_chunks if pc_markers == 0 else min(n_chunks, max(1, -(-pc_markers // chunk_markers)))
    return sorted({int(i * n_chunks // wanted) for i in range(wanted)})


def _principal_components(store: str | Path, dosage: da.Array, variants: np.ndarray,
                          settings: GRMSettings, samples: np.ndarray, pcs: int, rhe: RHESettings, plan: ComputePlan,
                          progress: bool) -> PrincipalComponents:
    """The top PCs of the analysis, from the store's cache or computed by sketch passes (and cached)."""
    n = dosage.shape[1]
    if pcs == 0:
        return PrincipalComponents(np.zeros((n, 0)), np.zeros(0), 0, 0)
    key = {**cache_key(settings, samples, variants), "pcs": pcs, "pc_passes": rhe.pc_passes,
           "pc_markers": rhe.pc_markers, "pc_seed": PC_SEED}
    with store_lock(store, RHE_GROUP):
        cached = open_store(store).get(RHE_GROUP)
        if cached is not None and cached.attrs.get("complete") and cached.attrs.get("key") == key:
            log.info(f"reusing the PCs in {store}/{RHE_GROUP}")
            return PrincipalComponents(cached["pcs"][:], cached["pc_eigenvalues"][:], int(cached.attrs["n_markers"]),
                                       0)
        components = _sketch_components(dosage, variants, settings, pcs, rhe, plan, progress)
        _cache(store, key, components)
        return components


def _sketch_components(dosage: da.Array, variants: np.ndarray, settings: GRMSettings, pcs: int, rhe: RHESettings,
                       plan: ComputePlan, progress: bool) -> PrincipalComponents:
    """The top ``pcs`` PCs of K by ``rhe.pc_passes`` sketch passes over about ``rhe.pc_markers`` markers."""
    n = dosage.shape[1]
    chunks = _pc_chunks(dosage.numblocks[0], plan.chunk_markers, rhe.pc_markers)
    bounds = chunk_bounds(dosage.chunks[0])
    subset = da.concatenate([dosage.blocks[t] for t in chunks])
    selected = np.concatenate([variants[slice(*bounds[t])] for t in chunks])
    omega = gaussian_start(n, sketch_width(pcs, n), PC_SEED)
    sketch = None
    for _ in range(rhe.pc_passes):
        omega = omega if sketch is None else orthonormal(sketch)
        sketch = sketch_pass(subset, selected, settings.scale, settings.qc, plan, omega, progress)
    values, vectors = nystrom_eigen(omega, sketch, pcs)
    return PrincipalComponents(vectors, values / max(int(selected.sum()), 1), int(selected.sum()), rhe.pc_passes)


def _cache(store: str | Path, key: dict, components: PrincipalComponents) -> None:
    try:
        group = zarr.open_group(str(store), mode="r+").create_group(RHE_GROUP, overwrite=True)
        group.attrs.update({"complete": False, "key": key, "n_markers": components.n_markers})
        group.create_array("pcs", data=components.vectors, dimension_names=("rhe_samples", "pcs"))
        group.create_array("pc_eigenvalues", data=components.values, dimension_names=("pcs",))
        group.attrs["complete"] = True
    except OSError as exc:
        log.warning(f"could not cache the PCs in {store}/{RHE_GROUP} ({exc.strerror or exc}); they are used from memory")


def _fit_traits(store: str | Path, dosage: da.Array, variants: np.ndarray, block: np.ndarray, traits: np.ndarray,
                names: np.ndarray, X: np.ndarray, columns: list[str], partition: Partition, settings: GRMSettings,
                rhe: RHESettings, plan: ComputePlan, progress: bool) -> tuple[list[MomentsTraitFit], np.ndarray, int]:
    """Both moments passes for every trait at once (one set of probes per missingness pattern):
    the fits, the marker table (M, 4) and the number of markers used."""
    n, size, probes = X.shape[0], partition.size, rhe.n_probes
    masks, bases, members = [], [], []
    for key, traits_of_pattern in missingness_patterns(traits, X).items():
        observed = np.frombuffer(key, dtype=bool)
        what = f"trait {names[traits_of_pattern[0]]} ({observed.sum()} samples with the trait and every covariate)"
        check_full_rank(X[observed], columns, what)
        basis = np.zeros_like(X)
        basis[observed] = np.linalg.qr(X[observed])[0]
        masks.append(observed)
        bases.append(basis)
        members.append(traits_of_pattern)
    projection = Projection(np.column_stack(masks), tuple(bases), probes)
    z = np.random.default_rng([rhe.seed, 1]).standard_normal((n, probes))
    observed_traits = np.nan_to_num(traits)
    right = np.hstack([projection.project(z, p) for p in range(len(masks))]
                      + [projection.project(observed_traits[:, members[p]], p) for p in range(len(masks))]
                      + [bases[p] for p in range(len(masks))])
    n_probe_columns = probes * len(masks)
    per_chunk, per_block = block_pieces(chunk_bounds(dosage.chunks[0]), block)
    with scratch_array(store, (sum(map(len, per_block)), size, n, n_probe_columns)) as scratch:
        first = moments_pass(dosage, variants, block, settings.scale, settings.qc, partition, right, projection,
                             scratch, per_chunk, plan, progress)
        component = first.component
        _check_components(component, partition)
        local, cross = block_pass(scratch, per_block, projection, projection.projected(first.totals), plan, progress)
    fits: dict[int, MomentsTraitFit] = {}
    trait_column = n_probe_columns
    basis_column = n_probe_columns + sum(len(m) for m in members)
    for p, traits_of_pattern in enumerate(members):
        within = first.products[:, basis_column:basis_column + X.shape[1]]
        trace_shares = first.squares[:, p] - np.sum(within.astype(np.float64) ** 2, axis=1)
        for j in traits_of_pattern:
            y = projection.project(observed_traits[:, [j]], p)[:, 0]
            stats = TraitStatistics(component, first.block, first.products[:, trait_column].astype(np.float64) ** 2,
                                    trace_shares, cross[..., p], local[..., p], float(y @ y),
                                    int(masks[p].sum()), X.shape[1], probes)
            fits[j] = _trait_fit(str(names[j]), stats, partition)
            trait_column += 1
        basis_column += X.shape[1]
    return [fits[j] for j in sorted(fits)], first.table, int(component.size)


@contextlib.contextmanager
def scratch_array(store: str | Path, shape: tuple[int, ...]) -> Iterator[zarr.Array]:
    """A float32 array (pieces, K, n, B·P), one uncompressed chunk a piece (written without Zarr's
    check for an all-zero chunk, which costs as much as the write), removed on the way out.

    Each run has its own, ``STORE/rhe_scratch/<host>-<pid>-<random>``, so that runs on the same
    store at once do not share one (in a local temporary folder when the store cannot be written);
    a run first removes the scratch that runs of this machine which no longer exist left behind
    (killed, or interrupted while a task was still writing)."""
    temporary = None
    try:
        with store_lock(store, SCRATCH):
            group = zarr.open_group(str(store), mode="r+").require_group(SCRATCH)
            _remove_abandoned_scratch(store)
            array = _create_scratch(group, shape)
    except OSError as exc:
        temporary = tempfile.mkdtemp(prefix="dask-h2-scratch-")
        log.warning(f"{store} cannot be written ({exc.strerror or exc}); the jackknife's scratch goes to {temporary}, "
                    "which every Dask worker must see")
        group = zarr.open_group(temporary, mode="w")
        array = _create_scratch(group, shape)
    try:
        yield array
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
        else:
            del group[array.basename]
            with store_lock(store, SCRATCH):  # the last run out leaves the store as it found it
                if not list(group.keys()):
                    del zarr.open_group(str(store), mode="r+")[SCRATCH]


def _create_scratch(group: zarr.Group, shape: tuple[int, ...]) -> zarr.Array:
    name = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
    return group.create_array(name, shape=shape, chunks=(1, *shape[1:]), dtype="float32", compressors=None,
                              fill_value=0.0, config={"write_empty_chunks": True})


def _remove_abandoned_scratch(store: str | Path) -> None:
    """Remove the folders under ``STORE/rhe_scratch`` of runs of this machine that no longer exist
    (a local store; held under the scratch's lock)."""
    if is_url(store):
        return
    host = socket.gethostname()
    for folder in (Path(store) / SCRATCH).iterdir():
        owner, _, rest = folder.name.rpartition("-")[0].rpartition("-")
        if folder.is_dir() and owner == host and rest.isdigit() and not psutil.pid_exists(int(rest)):
            shutil.rmtree(folder, ignore_errors=True)


def _check_components(component: np.ndarray, partition: Partition) -> None:
    """Every component must keep a marker after QC."""
    counts = np.bincount(component, minlength=partition.size)
    if not counts.all():
        empty = partition.names[int(np.flatnonzero(counts == 0)[0])]
        raise InputError(f"--partition: component {empty!r} has no markers after QC and monomorphic markers are "
                         "dropped")


def _trait_fit(name: str, stats: TraitStatistics, partition: Partition) -> MomentsTraitFit:
    try:
        estimates: MomentEstimates = fit_moments(stats)
    except ValueError as exc:
        raise InputError(f"trait {name}: {exc}") from None
    components = [ComponentFit(partition.names[k], int(estimates.n_markers[k]), float(estimates.sigma2[k]),
                               float(estimates.sigma2_se[k]), float(estimates.h2[k]), float(estimates.h2_se[k]))
                  for k in range(partition.size)]
    return MomentsTraitFit(name, "RHE", estimates.h2_total, estimates.h2_total_se, estimates.sigma_g2,
                           estimates.sigma_g2_se, float(estimates.sigma2[-1]), float(estimates.sigma2_se[-1]),
                           estimates.vp, estimates.vp_se, stats.n_samples, stats.n_fixed, components)
