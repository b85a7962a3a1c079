"""The exact path's fit problems, built from what the user has: a store (its GRM, or its partitioned
GRM for several components, computed or reused), a GCTA GRM with a phenotype file, or GCTA's list of
several GRMs (``--mgrm``) with a phenotype file, whose common samples are fitted."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.linalg
from distributed import Client

from dask_h2.errors import NAMED, InputError, ParameterError
from dask_h2.greml.problem import ComponentsProblem, FitProblem, GRMDescription
from dask_h2.greml.univariate import dense_subset_eigen
from dask_h2.io.covariates import read_covariates
from dask_h2.io.gcta import GCTAGRM, read_grm
from dask_h2.io.phenotypes import read_phenotypes
from dask_h2.kinship.eigen import eigendecompose, warn_if_not_psd
from dask_h2.kinship.groups import grm_of_store, partitioned_grm_of_store, subset_eigen_of_store
from dask_h2.kinship.king import describe_relatives, grm_cutoff_removed, relatives_of_store
from dask_h2.kinship.partition import Partition
from dask_h2.kinship.selection import Selection
from dask_h2.store import open_store
from dask_h2.traits import Traits, read_traits, store_traits


def store_problem(store: str | Path, *, selection: Selection = Selection(), grm_cutoff: float | None = None,
                  covar: str | Path | None = None, qcovar: str | Path | None = None, memory_limit: int | None = None,
                  client: Client | None = None, progress: bool = True) -> FitProblem:
    """The fit problem of a store: its GRM (computed or reused, on ``client``'s cluster if given, within
    ``memory_limit`` bytes), traits and covariates over the GRM's samples; with ``grm_cutoff``, over those
    GCTA's ``--grm-cutoff`` keeps (:func:`dask_h2.kinship.king.grm_cutoff_removed`; K is not recomputed, the
    eigendecomposition of its submatrix is cached in the store)."""
    traits = read_traits(open_store(store), store)  # checked before the GRM is computed
    relatives = relatives_of_store(store, selection, memory_limit=memory_limit, client=client, progress=progress)
    result = grm_of_store(store, selection=selection, memory_limit=memory_limit, client=client, progress=progress)
    subset_eigen, eigen, kept = subset_eigen_of_store(store, result), result.eigen, None
    if grm_cutoff is not None:
        kept = np.flatnonzero(~grm_cutoff_removed(result.kinship, grm_cutoff))
        eigen, whole_subset = subset_eigen(kept), subset_eigen
        subset_eigen = lambda index: whole_subset(kept[index])  # noqa: E731
    index = result.sample_index if kept is None else result.sample_index[kept]
    of_samples = store_traits(store, index, covar=covar, qcovar=qcovar, traits=traits)
    extra = {"grm_cutoff": grm_cutoff, "n_grm_cutoff_removed": int(result.sample_index.size - kept.size)} \
        if kept is not None else {}
    return FitProblem(
        eigen=eigen,
        traits=of_samples,
        subset_eigen=subset_eigen,
        grm=GRMDescription(
            n_markers_used=result.n_markers_used,
            n_markers_dropped=result.n_markers_dropped,
            scale=result.scale,
            extra={**selection.describe(result.marker_counts), "n_samples_removed": of_samples.n_samples_removed,
                   **describe_relatives(relatives), **extra},
        ),
        kinship_block=lambda rows, cols: result.kinship.oindex[_within(kept, rows), _within(kept, cols)],
    )


def _within(kept: np.ndarray | None, index: np.ndarray) -> np.ndarray:
    """Positions ``index`` among the ``kept`` samples (all for None) as positions among the GRM's samples."""
    return index if kept is None else kept[index]


def components_problem(store: str | Path, *, partition: str | Path | Partition | None = None,
                       selection: Selection = Selection(), covar: str | Path | None = None,
                       qcovar: str | Path | None = None, memory_limit: int | None = None,
                       client: Client | None = None, progress: bool = True) -> ComponentsProblem:
    """The several-components problem of a store: the K_k of its partitioned GRM (``partition``, or the
    one recorded in the store; read whole) with the store's traits and covariates."""
    traits = read_traits(open_store(store), store)
    relatives = relatives_of_store(store, selection, memory_limit=memory_limit, client=client, progress=progress)
    result = partitioned_grm_of_store(store, partition=partition, selection=selection, memory_limit=memory_limit,
                                      client=client, progress=progress)
    of_samples = store_traits(store, result.sample_index, covar=covar, qcovar=qcovar, traits=traits)
    return ComponentsProblem(kinships=result.kinships[:], component_names=result.part_names,
                             n_markers=result.part_markers, combined=lambda: result.eigen, traits=of_samples,
                             grm=GRMDescription(n_markers_used=int(np.sum(result.part_markers)),
                                                n_markers_dropped=result.n_markers_dropped, scale=result.scale,
                                                extra={**selection.describe(result.marker_counts),
                                                       **describe_relatives(relatives)}))


def gcta_problem(prefix: str | Path, *, pheno: str | Path, grm_cutoff: float | None = None,
                 covar: str | Path | None = None, qcovar: str | Path | None = None) -> FitProblem:
    """The fit problem of a GCTA GRM (``PREFIX.grm.bin/.grm.N.bin/.grm.id``) with phenotypes
    from ``pheno`` (FID IID y1 y2 …), matched by IID; no store is involved. ``grm_cutoff``: only the
    samples GCTA's ``--grm-cutoff`` keeps."""
    K, iid, description = gcta_kinship(prefix, grm_cutoff=grm_cutoff)
    return FitProblem(
        eigen=eigendecompose(K.copy(), overwrite=True),
        traits=file_traits(pheno, iid, covar=covar, qcovar=qcovar),
        subset_eigen=dense_subset_eigen(K),
        grm=description,
        kinship_block=lambda rows, cols: K[np.ix_(rows, cols)],
    )


def gcta_kinship(prefix: str | Path, *,
                 grm_cutoff: float | None = None) -> tuple[np.ndarray, np.ndarray, GRMDescription]:
    """K (n, n) of a GCTA GRM, the IIDs (n,) of its samples and its description for the report; with
    ``grm_cutoff``, on the samples GCTA's ``--grm-cutoff`` keeps."""
    gcta = read_grm(prefix)
    K, iid, extra = gcta.kinship, gcta.iid, {"grm": str(prefix)}
    if grm_cutoff is not None:
        kept = ~grm_cutoff_removed(K, grm_cutoff)
        K, iid = K[np.ix_(kept, kept)], iid[kept]
        extra.update(grm_cutoff=grm_cutoff, n_grm_cutoff_removed=int((~kept).sum()))
    return K, iid, GRMDescription(n_markers_used=int(gcta.n_markers.max()) if gcta.n_markers is not None else None,
                                  n_markers_dropped=0, scale="gcta-grm", extra=extra)


def gcta_components_problem(grm_list: str | Path, *, pheno: str | Path, covar: str | Path | None = None,
                            qcovar: str | Path | None = None) -> ComponentsProblem:
    """The several-components problem of the GCTA GRMs listed in ``grm_list`` (one PREFIX per line, GCTA's
    ``--mgrm``; a relative PREFIX is looked up from the current folder, then the list's), on the samples
    they all hold, with phenotypes from ``pheno`` matched by IID. A GRM that is not positive
    semidefinite is used as it is, with a one-line warning; a GRM listed twice, or two equal ones, is
    refused (their components could not be told apart)."""
    prefixes = _listed_prefixes(Path(grm_list))
    grms = [read_grm(prefix) for prefix in prefixes]
    common = set(grms[0].iid)
    for grm in grms[1:]:
        common &= set(grm.iid)
    iid = np.array([i for i in grms[0].iid if i in common], dtype=object)
    if iid.size == 0:
        raise InputError(f"{grm_list}: the GRMs listed have no sample in common")
    kinships = np.stack([_subset(grm, iid) for grm in grms])
    for j, k in ((j, k) for j in range(len(grms)) for k in range(j)):
        if np.array_equal(kinships[j], kinships[k]):
            raise InputError(f"{grm_list}: the GRMs {prefixes[k]} and {prefixes[j]} are equal on their common samples; "
                             "their variance components could not be told apart")
    for prefix, K in zip(prefixes, kinships):
        warn_if_not_psd(
            scipy.linalg.eigvalsh(K, check_finite=False), what=f"{prefix}.grm.bin", action="it is used as it is"
        )
    n_markers = np.array([int(grm.n_markers.max()) if grm.n_markers is not None else 0 for grm in grms])
    weights = n_markers / n_markers.sum() if n_markers.all() else np.full(len(grms), 1.0 / len(grms))
    return ComponentsProblem(kinships=kinships, component_names=tuple(Path(p).name for p in prefixes),
                             n_markers=n_markers,
                             combined=lambda: eigendecompose(np.tensordot(weights, kinships, axes=1), overwrite=True),
                             traits=file_traits(pheno, iid, covar=covar, qcovar=qcovar),
                             grm=GRMDescription(n_markers_used=int(np.sum(n_markers)) if n_markers.all() else None,
                                                n_markers_dropped=0,
                                                scale="gcta-grm", extra={"mgrm": str(grm_list)}))


def file_traits(pheno: str | Path, iid: np.ndarray, *, covar: str | Path | None = None,
                qcovar: str | Path | None = None) -> Traits:
    """The traits of a phenotype file and the covariates of the samples ``iid`` (n,)."""
    values, names = read_phenotypes(pheno, iid)
    return Traits(
        values=values,
        names=np.array(names, dtype=object),
        covariates=read_covariates(iid, covar=covar, qcovar=qcovar),
        n_samples_removed=0,
    )


def _listed_prefixes(path: Path) -> list[str]:
    if not path.is_file():
        raise ParameterError(f"{path}: no such file ({{grm_list}} is a file listing one GRM prefix per line)",
                             grm_list=NAMED)
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not lines:
        raise InputError(f"{path}: lists no GRM")
    found = []
    for line in lines:
        prefix = Path(line)
        if not Path(f"{prefix}.grm.bin").exists() and Path(f"{path.parent / line}.grm.bin").exists():
            prefix = path.parent / line
        if any(Path(f"{prefix}.grm.bin").resolve() == Path(f"{other}.grm.bin").resolve() for other in found):
            raise InputError(f"{path}: lists the GRM {line} twice; each variance component needs a GRM of its own")
        found.append(str(prefix))
    return found


def _subset(grm: GCTAGRM, iid: np.ndarray) -> np.ndarray:
    """K of ``grm`` on the samples ``iid`` (n,), in that order."""
    position = {i: k for k, i in enumerate(grm.iid)}
    index = np.array([position[i] for i in iid])
    return grm.kinship if np.array_equal(index, np.arange(len(grm.iid))) else grm.kinship[np.ix_(index, index)]

