"""The store's kinship products, each computed once and kept with the key of what made it.

- ``grm/``: K of the selected samples and markers and its eigendecomposition (:func:`grm_of_store`);
  ``grm/subsets/<hash>/``: the eigendecomposition of K's submatrix for the samples of a missingness
  pattern (:func:`subset_eigen_of_store`);
- ``grm_partition/``: one K_k per part of a partition of the markers, the eigendecomposition of
  their combined K (whose top eigenvectors are the PCs) and the partition itself
  (:func:`partitioned_grm_of_store`).

A product is reused when its key (scale, QC, the samples and markers kept, the genotypes
themselves, and the partition) is that of the request (:func:`dask_h2.store.cached_group`).
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import zarr
from distributed import Client

from dask_h2.checks import check, check_unique, memory_size, positive_int
from dask_h2.cluster import using
from dask_h2.errors import NAMED, InputError, ParameterError, output_errors
from dask_h2.kinship.eigen import Eigen, eigendecompose
from dask_h2.kinship.grm import Kinship, PartitionedKinship, kinship, partitioned_kinship, sample_columns
from dask_h2.kinship.partition import Partition, parse_partition
from dask_h2.kinship.king import analysed_samples
from dask_h2.kinship.selection import Selection, cache_key, variant_mask
from dask_h2.kinship.tiled import tiled_kinship
from dask_h2.planning import ComputePlan, OverBudget, TilePlan, check_driver_memory, grm_plan
from dask_h2.progress import dask_progress
from dask_h2.store import (CachedGroup, cached_group, genotypes_key, mark_group_complete, open_store, read_strings)

GRM_GROUP = "grm"
SUBSETS_GROUP = "subsets"  # inside grm/: eigendecompositions of K's submatrices, one group per sample subset
PARTITION_GROUP = "grm_partition"
log = logging.getLogger("dask_h2")


@dataclass(frozen=True, kw_only=True)
class GRMResult:
    """K (n, n) as stored (a zarr array) over the store's samples ``sample_index`` (n,), its
    eigendecomposition and the marker counts by status."""

    kinship: zarr.Array
    eigen: Eigen
    n_markers_used: int
    n_markers_dropped: int
    scale: str
    sample_index: np.ndarray
    marker_counts: dict[str, int]


@dataclass(frozen=True, kw_only=True)
class PartitionedGRMResult:
    """K_k (P, n, n) as stored over the store's samples ``sample_index`` (n,), with the part names,
    markers per part (P,), the eigendecomposition of their combined K and the marker counts by status."""

    kinships: zarr.Array
    part_names: tuple[str, ...]
    part_markers: np.ndarray
    eigen: Eigen
    n_markers_dropped: int
    scale: str
    sample_index: np.ndarray
    marker_counts: dict[str, int]


@dataclass(frozen=True, kw_only=True)
class Request:
    """What a kinship product is made of: the ``samples`` and ``variants`` (bool) of the store that a
    :class:`~dask_h2.kinship.selection.Selection` keeps, and the product's cache key."""

    samples: np.ndarray
    variants: np.ndarray
    key: dict


def request(store: str | Path, selection: Selection, *, memory_limit: int | None = None, client: Client | None = None,
            progress: bool = True) -> Request:
    """The :class:`Request` of ``selection`` on ``store`` (its relatives removed, computed or reused); refuses a
    sample count whose K the driver cannot hold (:func:`dask_h2.planning.check_driver_memory`)."""
    root = open_store(store)
    sample_id = read_strings(root, "sample_id")
    check_unique(sample_id, where=f"{store}: sample_id")
    samples = analysed_samples(store, selection, memory_limit=memory_limit, client=client, progress=progress)[0]
    variants = variant_mask(read_strings(root, "variant_id"), selection)
    check_driver_memory(int(samples.sum()), str(store))
    key = {**cache_key(selection, samples, variants=variants), "genotypes": genotypes_key(root)}
    return Request(samples=samples, variants=variants, key=key)


def grm_of_store(store: str | Path, *, selection: Selection = Selection(), memory_limit: int | None = None,
                 tile: int | None = None, recompute: bool = False, client: Client | None = None,
                 progress: bool = True) -> GRMResult:
    """K and its eigendecomposition for a store, computed once and kept in ``store/grm``.

    See :func:`dask_h2.api.grm` for the parameters."""
    wanted = request(store, selection, memory_limit=memory_limit, client=client, progress=progress)
    with cached_group(store, GRM_GROUP, key=wanted.key, recompute=recompute) as cache:
        if cache.reusable is not None:
            log.info(f"reusing the GRM in {store}/{GRM_GROUP}: same samples, markers, QC and scale")
            return _grm_result(cache.reusable)
        group, k = _build(store, cache, selection=selection, wanted=wanted, memory_limit=memory_limit, tile=tile,
                          client=client, progress=progress)
        eigen = eigendecompose(k.matrix, overwrite=True)
        _complete(store, group, eigen, n_markers_used=k.n_markers_used, n_markers_dropped=k.n_markers_dropped,
                  marker_counts=k.marker_counts)
        return _grm_result(group, eigen)


def partitioned_grm_of_store(store: str | Path, *, partition: str | Path | Partition | None = None,
                             selection: Selection = Selection(), memory_limit: int | None = None,
                             tile: int | None = None, recompute: bool = False, client: Client | None = None,
                             progress: bool = True) -> PartitionedGRMResult:
    """One K_k per part of ``partition`` (``maf:e0,e1,...``, a file of ``variant component`` lines, or a
    :class:`~dask_h2.kinship.partition.Partition`), computed once and kept in ``store/grm_partition``;
    None reuses the partition recorded there. The other parameters are those of :func:`grm_of_store`."""
    wanted = request(store, selection, memory_limit=memory_limit, client=client, progress=progress)
    partition = _resolve_partition(store, partition)
    key = {**wanted.key, "partition": partition.key()}
    with cached_group(store, PARTITION_GROUP, key=key, recompute=recompute) as cache:
        if cache.reusable is not None:
            log.info(f"reusing the partitioned GRM in {store}/{PARTITION_GROUP}: same partition, samples, markers, "
                     "QC and scale")
            return _partitioned_result(cache.reusable)
        group, k = _build(store, cache, selection=selection, wanted=wanted, memory_limit=memory_limit, tile=tile,
                          client=client, progress=progress, partition=partition)
        eigen = eigendecompose(k.combined(), overwrite=True)
        arrays = None if partition.variant_component is None else {"variant_component": partition.variant_component}
        _complete(store, group, eigen, arrays, part_names=list(k.part_names), part_markers=k.part_markers.tolist(),
                  n_markers_dropped=k.n_markers_dropped, marker_counts=k.marker_counts,
                  maf_edges=list(partition.maf_edges) if partition.maf_edges else None)
        return _partitioned_result(group, eigen)


def _resolve_partition(store: str | Path, spec: str | Path | Partition | None) -> Partition:
    if isinstance(spec, Partition):
        return spec
    root = open_store(store)
    if spec is not None:
        return parse_partition(spec, read_strings(root, "variant_id"))
    recorded = root.get(PARTITION_GROUP)
    if recorded is None or not recorded.attrs.get("complete"):
        raise ParameterError(f"{store}: no partitioned GRM: give the {{partition}} of the markers", partition=NAMED)
    attrs = recorded.attrs
    codes = recorded["variant_component"][:] if "variant_component" in recorded else None
    edges = tuple(attrs["maf_edges"]) if attrs.get("maf_edges") else None
    return Partition(names=tuple(attrs["part_names"]), maf_edges=edges, variant_component=codes)


def _build(store: str | Path, cache: CachedGroup, *, selection: Selection, wanted: Request, memory_limit: int | None,
           tile: int | None, client: Client | None, progress: bool,
           partition: Partition | None = None) -> tuple[zarr.Group, Kinship | PartitionedKinship]:
    """The cache's new group holding ``kinship``, the samples and the allele frequencies: K (n, n), or
    with a ``partition`` one K_k per part (P, n, n).

    K held in memory is computed before the group replaces an older one, so that an input error
    found in the pass over the genotypes (e.g. a part without markers) leaves the store as it was;
    a tiled K is written as it is computed, and its group removed after such an error."""
    memory_limit = None if memory_limit is None else check(memory_limit, memory_size, parameter="memory_limit")
    tile = None if tile is None else check(tile, positive_int, parameter="tile")
    dosage = open_store(store)["call_dosage"]
    samples = wanted.samples
    with using(client):
        try:
            plan = grm_plan(
                int(samples.sum()),
                dosage.shape[0],
                memory_limit=memory_limit,
                tile=tile,
                store_chunk=dosage.chunks[0],
                parts=partition.size if partition else 1,
            )
        except OverBudget as exc:
            raise exc.parameter_error(memory_limit=memory_limit) from None
        with output_errors(f"{store}/{cache.name}", "writing the GRM into the store"):
            if cache.unwritable is not None:  # said before the pass over the genotypes, not after it
                raise cache.unwritable
            with dask_progress("GRM", enabled=progress):
                try:
                    group, k = _kinship(dosage, lambda: cache.create(scale=selection.scale), plan, selection,
                                        wanted, partition)
                except (ValueError, ParameterError) as exc:
                    cache.remove()
                    raise exc.about(str(store)) if isinstance(exc, ParameterError) else InputError(f"{store}: {exc}") \
                        from None
            group.create_array("sample_index", data=np.flatnonzero(samples), dimension_names=("grm_samples",))
            group.create_array("variant_allele_frequency", data=k.allele_frequency, dimension_names=("variants",))
    return group, k


def _complete(store: str | Path, group: zarr.Group, eigen: Eigen, arrays: dict[str, np.ndarray] | None = None,
              **attrs) -> None:
    """Finish a GRM ``group``: its ``attrs``, extra 1-d ``arrays`` over the variants, the eigendecomposition,
    then ``complete`` (last, so that an interrupted group is never reused)."""
    with output_errors(f"{store}/{group.basename}", "writing the GRM into the store"):
        group.attrs.update(attrs)
        for name, data in (arrays or {}).items():
            group.create_array(name, data=data, dimension_names=("variants",))
        group.create_array("eigenvalues", data=eigen.values, dimension_names=("components",))
        group.create_array("eigenvectors", data=eigen.vectors, dimension_names=("grm_samples", "components"))
        mark_group_complete(group)


def _kinship(dosage: zarr.Array, new_group: Callable[[], zarr.Group], plan: ComputePlan | TilePlan,
             selection: Selection, wanted: Request,
             partition: Partition | None) -> tuple[zarr.Group, Kinship | PartitionedKinship]:
    """K of the wanted samples from the wanted variants by ``plan``, written to ``kinship`` in the group
    that ``new_group()`` creates (when the output is first needed); with a ``partition``, its K_k
    stacked (P, n, n)."""
    samples, variants = wanted.samples, wanted.variants
    index = None if samples.all() else np.flatnonzero(samples)
    n = int(samples.sum())
    names = ("grm_samples", "grm_samples_2") if partition is None else ("parts", "grm_samples", "grm_samples_2")
    shape = (n, n) if partition is None else (partition.size, n, n)
    if isinstance(plan, TilePlan):
        group = new_group()
        out = group.create_array("kinship", shape=shape, chunks=(1,) * (len(shape) - 2) + (plan.tile, plan.tile),
                                 dtype="float64", dimension_names=names)
        return group, tiled_kinship(dosage, out, plan=plan, scale=selection.scale, qc=selection.qc, samples=index,
                                    selected=variants, partition=partition or Partition())
    columns = sample_columns(dosage, samples)
    if partition is None:
        k = kinship(columns, scale=selection.scale, plan=plan, qc=selection.qc, selected=variants)
        group = new_group()
        group.create_array("kinship", data=k.matrix, dimension_names=names)
    else:
        k = partitioned_kinship(columns, partition, scale=selection.scale, plan=plan, qc=selection.qc,
                                selected=variants)
        group = new_group()
        group.create_array("kinship", data=k.matrices, chunks=(1, n, n), dimension_names=names)
    return group, k


def _grm_result(group: zarr.Group, eigen: Eigen | None = None) -> GRMResult:
    eigen = eigen or Eigen(values=group["eigenvalues"][:], vectors=group["eigenvectors"][:])
    return GRMResult(kinship=group["kinship"], eigen=eigen, n_markers_used=int(group.attrs["n_markers_used"]),
                     n_markers_dropped=int(group.attrs["n_markers_dropped"]), scale=str(group.attrs["scale"]),
                     sample_index=group["sample_index"][:], marker_counts=dict(group.attrs["marker_counts"]))


def _partitioned_result(group: zarr.Group, eigen: Eigen | None = None) -> PartitionedGRMResult:
    eigen = eigen or Eigen(values=group["eigenvalues"][:], vectors=group["eigenvectors"][:])
    return PartitionedGRMResult(kinships=group["kinship"], part_names=tuple(group.attrs["part_names"]),
                                part_markers=np.array(group.attrs["part_markers"]), eigen=eigen,
                                n_markers_dropped=int(group.attrs["n_markers_dropped"]),
                                scale=str(group.attrs["scale"]), sample_index=group["sample_index"][:],
                                marker_counts=dict(group.attrs["marker_counts"]))


def subset_eigen_of_store(store: str | Path, result: GRMResult) -> Callable[[np.ndarray], Eigen]:
    """Eigendecompositions of K[index][:, index] (``index`` into the GRM's samples), each computed
    once and kept in ``store/grm/subsets/<hash of index>`` with the key of the GRM it comes from
    (recomputing the GRM discards them); where the store cannot be written (read-only), computed
    in memory, which is said in one line."""
    grm_key = dict(open_store(store)[GRM_GROUP].attrs["key"])

    def subset_eigen(index: np.ndarray) -> Eigen:
        index = np.asarray(index, dtype=np.int64)
        digest = hashlib.sha1(index.tobytes()).hexdigest()
        path = f"{GRM_GROUP}/{SUBSETS_GROUP}/{digest[:20]}"
        with cached_group(store, path, key={"grm": grm_key, "index_sha1": digest}) as cache:
            if cache.reusable is not None:
                return Eigen(values=cache.reusable["eigenvalues"][:], vectors=cache.reusable["eigenvectors"][:])
            eigen = eigendecompose(result.kinship.oindex[index, index], overwrite=True)
            try:
                group = cache.create()
                group.create_array("index", data=index, dimension_names=("subset_samples",))
                group.create_array("eigenvalues", data=eigen.values, dimension_names=("components",))
                group.create_array("eigenvectors", data=eigen.vectors, dimension_names=("subset_samples", "components"))
                mark_group_complete(group)
            except OSError as exc:
                log.warning(f"could not cache the eigendecomposition of K for {index.size} samples in {store}/{path} "
                            f"({exc.strerror or exc}); computed in memory")
            return eigen

    return subset_eigen

