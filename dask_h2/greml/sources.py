"""Several GRMs at the store level: ``grm --partition``, ``fit --mgrm`` and ``fit --mgrm-gcta LIST``.

The K_k of a partition of the markers are computed in one pass (:func:`dask_h2.kinship.grm.partitioned_kinship`)
and cached in ``STORE/grm_partition``: ``kinship`` (P, n, n), ``sample_index``, the
eigendecomposition of Σ_k M_k K_k / Σ_k M_k (the K of all their markers, whose top
eigenvectors are the PCs) and the partition itself, so that ``fit --mgrm`` reuses it.
GCTA's ``--mgrm`` LIST names one GRM prefix per line; their common samples are fitted.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.linalg
import zarr
from distributed import Client

from dask_h2.api import build_kinship_group, complete_group, grm_selection, reusable_group
from dask_h2.io.covariates import read_covariates
from dask_h2.kinship.eigen import Eigen, eigendecompose, warn_if_not_psd
from dask_h2.errors import InputError, output_errors
from dask_h2.io.gcta import GCTAGRM, read_grm, write_grm
from dask_h2.io.phenotypes import read_phenotypes
from dask_h2.io.outputs import atomic_outputs
from dask_h2.kinship.partition import Partition, parse_partition
from dask_h2.greml.problem import SeveralGRMProblem
from dask_h2.kinship.selection import GRMSettings
from dask_h2.store import open_store, read_strings, read_traits, store_lock

PARTITION_GROUP = "grm_partition"
log = logging.getLogger("dask_h2")


@dataclass(frozen=True)
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


def grm_partition(store: str | Path, partition: str | Path | Partition | None = None,
                  settings: GRMSettings = GRMSettings(), memory_limit: int | None = None, recompute: bool = False,
                  progress: bool = True, tile: int | None = None, client: Client | None = None) -> PartitionedGRMResult:
    """One K_k per part of ``partition`` (``maf:e0,e1,...`` or a file of ``variant component``
    lines, see :mod:`dask_h2.kinship.partition`), computed once and cached in ``store/grm_partition``;
    None reuses the partition recorded there. The other options are those of :func:`dask_h2.api.grm`.
    """
    root, samples, variants, key = grm_selection(store, settings)
    partition = _resolve_partition(store, root, partition)
    key = {**key, "partition": partition.key()}
    with store_lock(store, PARTITION_GROUP):
        cached = reusable_group(open_store(store), PARTITION_GROUP, key, recompute)
        if cached is not None:
            log.info(f"reusing the partitioned GRM in {store}/{PARTITION_GROUP}: same partition, samples, markers, "
                     "QC and scale")
            return _result(cached)
        group, k = build_kinship_group(store, PARTITION_GROUP, key, settings, samples, variants, memory_limit, tile,
                                       client, progress, partition)
        eigen = eigendecompose(k.combined(), overwrite=True)
        complete_group(store, group, {"part_names": list(k.part_names), "part_markers": k.part_markers.tolist(),
                                      "n_markers_dropped": k.n_markers_dropped, "marker_counts": k.marker_counts,
                                      "maf_edges": list(partition.maf_edges) if partition.maf_edges else None},
                       eigen, None if partition.variant_component is None else
                       {"variant_component": partition.variant_component})
        return _result(group, eigen)


def _resolve_partition(store: str | Path, root: zarr.Group, spec: str | Path | Partition | None) -> Partition:
    if isinstance(spec, Partition):
        return spec
    if spec is not None:
        return parse_partition(spec, read_strings(root, "variant_id"))
    recorded = root.get(PARTITION_GROUP)
    if recorded is None or not recorded.attrs.get("complete"):
        raise InputError(f"{store}: no partitioned GRM: run 'dask-h2 grm {store} --partition SPEC' or give "
                         "--partition SPEC")
    attrs = recorded.attrs
    codes = recorded["variant_component"][:] if "variant_component" in recorded else None
    edges = tuple(attrs["maf_edges"]) if attrs.get("maf_edges") else None
    return Partition(tuple(attrs["part_names"]), edges, codes)


def _result(group: zarr.Group, eigen: Eigen | None = None) -> PartitionedGRMResult:
    eigen = eigen or Eigen(group["eigenvalues"][:], group["eigenvectors"][:])
    return PartitionedGRMResult(group["kinship"], tuple(group.attrs["part_names"]),
                                np.array(group.attrs["part_markers"]), eigen, int(group.attrs["n_markers_dropped"]),
                                str(group.attrs["scale"]), group["sample_index"][:],
                                dict(group.attrs["marker_counts"]))


def load_partitioned(store: str | Path, partition: str | Path | Partition | None = None,
                     settings: GRMSettings = GRMSettings(), covar: str | Path | None = None,
                     qcovar: str | Path | None = None, progress: bool = True,
                     client: Client | None = None) -> SeveralGRMProblem:
    """The several-GRM problem of a store: the K_k of :func:`grm_partition` (read whole) with the
    store's traits and the covariates of ``covar``/``qcovar``."""
    traits, names = read_traits(open_store(store), store)
    result = grm_partition(store, partition, settings, progress=progress, client=client)
    root = zarr.open_group(store, mode="r")
    traits = traits[result.sample_index]
    covariates = read_covariates(read_strings(root, "sample_id")[result.sample_index], covar, qcovar)
    return SeveralGRMProblem(result.kinships[:], result.part_names, result.part_markers, lambda: result.eigen,
                             traits, names, covariates, result.n_markers_dropped, result.scale,
                             {"marker_counts": result.marker_counts, "maf": settings.qc.maf,
                              "max_missing": settings.qc.max_missing})


def load_mgrm_gcta(grm_list: str | Path, pheno: str | Path, covar: str | Path | None = None,
                   qcovar: str | Path | None = None) -> SeveralGRMProblem:
    """The several-GRM problem of GCTA GRMs listed in ``grm_list`` (one PREFIX per line, GCTA's
    ``--mgrm``; a relative PREFIX is looked up from the current folder, then the list's), on the
    samples they all hold, with phenotypes from ``pheno`` matched by IID. A GRM that is not
    positive semidefinite is used as it is, with a one-line warning."""
    prefixes = _listed_prefixes(Path(grm_list))
    grms = [read_grm(prefix) for prefix in prefixes]
    common = set(grms[0].iid)
    for grm in grms[1:]:
        common &= set(grm.iid)
    iid = np.array([i for i in grms[0].iid if i in common], dtype=object)
    if iid.size == 0:
        raise InputError(f"{grm_list}: the GRMs listed have no sample in common")
    kinships = np.stack([_subset(grm, iid) for grm in grms])
    for prefix, K in zip(prefixes, kinships):
        warn_if_not_psd(scipy.linalg.eigvalsh(K, check_finite=False), f"{prefix}.grm.bin", "it is used as it is")
    n_markers = np.array([int(grm.n_markers.max()) if grm.n_markers is not None else 0 for grm in grms])
    traits, names = read_phenotypes(pheno, iid)
    weights = n_markers / n_markers.sum() if n_markers.all() else np.full(len(grms), 1.0 / len(grms))
    return SeveralGRMProblem(kinships, tuple(Path(p).name for p in prefixes), n_markers,
                             lambda: eigendecompose(np.tensordot(weights, kinships, axes=1), overwrite=True),
                             traits, np.array(names, dtype=object), read_covariates(iid, covar, qcovar), 0,
                             "gcta-grm", {"mgrm": str(grm_list)})


def _listed_prefixes(path: Path) -> list[str]:
    if not path.is_file():
        raise InputError(f"{path}: no such file (--mgrm-gcta takes a file listing one GRM prefix per line)")
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not lines:
        raise InputError(f"{path}: lists no GRM")
    found = []
    for line in lines:
        prefix = Path(line)
        if not Path(f"{prefix}.grm.bin").exists() and Path(f"{path.parent / line}.grm.bin").exists():
            prefix = path.parent / line
        found.append(str(prefix))
    return found


def _subset(grm: GCTAGRM, iid: np.ndarray) -> np.ndarray:
    """K of ``grm`` on the samples ``iid`` (n,), in that order."""
    position = {i: k for k, i in enumerate(grm.iid)}
    index = np.array([position[i] for i in iid])
    return grm.kinship if np.array_equal(index, np.arange(len(grm.iid))) else grm.kinship[np.ix_(index, index)]


def export_partition_gcta(store: str | Path, prefix: str | Path, partition: str | Path | Partition | None = None,
                          settings: GRMSettings = GRMSettings(), progress: bool = True) -> list[Path]:
    """Write each K_k as GCTA's ``PREFIX.<part>.grm.bin/.grm.N.bin/.grm.id`` and ``PREFIX.mgrm``
    listing their prefixes (GCTA's ``--mgrm`` and ``fit --mgrm-gcta``)."""
    result = grm_partition(store, partition, settings, progress=progress)
    sample_id = read_strings(zarr.open_group(store, mode="r"), "sample_id")[result.sample_index]
    written, listed = [], []
    for k, (name, markers) in enumerate(zip(result.part_names, result.part_markers)):
        part_prefix = Path(f"{prefix}.{name}")
        written += write_grm(part_prefix, result.kinships[k], sample_id, int(markers))
        listed.append(str(part_prefix))
    mgrm = Path(f"{prefix}.mgrm")
    with output_errors(str(mgrm), "writing GCTA's list of GRMs"), atomic_outputs(mgrm) as (partial,):
        partial.write_text("".join(f"{line}\n" for line in listed))
    return [*written, mgrm]
