"""Store-level API: convert, simulate, grm, fit and run, as the CLI exposes them."""
from __future__ import annotations

import hashlib
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import dask.array as da
import numpy as np
import zarr
from distributed import Client

from dask_h2.io.bed_input import bed_source
from dask_h2.io.fingerprint import conversion_key, describe_difference
from dask_h2.io.rdata_input import rdata_source
from dask_h2.io.rdata_writer import RMatrix, write_rdata
from dask_h2.io.sources import GenotypeSource, marker_blocks, write_store
from dask_h2.io.spool import spool_directory
from dask_h2.io.vcf_zarr_input import is_vcf_zarr, vcf_zarr_source
from dask_h2.io.phenotypes import read_phenotypes
from dask_h2.io.rdata_format import NA_INTEGER
from dask_h2.io.covariates import read_covariates
from dask_h2.kinship.eigen import Eigen, eigendecompose
from dask_h2.errors import InputError, OutputError, output_errors
from dask_h2.greml.univariate import dense_subset_eigen
from dask_h2.io.gcta import read_grm, write_grm
from dask_h2.cluster import using
from dask_h2.kinship.grm import Kinship, PartitionedKinship, kinship, partitioned_kinship
from dask_h2.checks import check, memory_size, one_of, positive_int
from dask_h2.io.tables import check_unique
from dask_h2.kinship.partition import Partition
from dask_h2.greml.problem import FitProblem
from dask_h2.progress import dask_progress, progress_bar
from dask_h2.io.reports import FitReport
from dask_h2.planning import ComputePlan, TilePlan, check_driver_memory, grm_plan
from dask_h2.moments.fit import RHESettings, fit_rhe
from dask_h2.kinship.selection import GRMSettings, cache_key, sample_mask, variant_mask
from dask_h2.io.simulate import SimulationDesign, simulate
from dask_h2.kinship.tiled import tiled_kinship
from dask_h2.store import (ATTRS_KEY, GRM_GROUP, SUBSETS_GROUP, genotypes_key, is_complete, is_url, open_store,
                    read_strings, read_traits, refuse_complete, store_lock)

RDATA_SUFFIXES = (".rdata", ".rda")
CONVERSION_KEY = "conversion_key"  # in the store's attributes: the inputs and options that made it
log = logging.getLogger("dask_h2")


@dataclass(frozen=True)
class GRMResult:
    """K (n, n) as stored (a zarr array) over the store's samples ``sample_index`` (n,),
    its eigendecomposition and the marker counts by status."""

    kinship: zarr.Array
    eigen: Eigen
    n_markers_used: int
    n_markers_dropped: int
    scale: str
    sample_index: np.ndarray
    marker_counts: dict[str, int]


def _is_rdata(path: Path) -> bool:
    return path.suffix.lower() in RDATA_SUFFIXES


def source_for(path: str | Path, genotypes: str | None = None, phenotypes: str | None = None,
               transpose: bool | None = None, pheno: str | Path | None = None, mpheno: int | None = None,
               spool_dir: Path | None = None, progress: bool = False) -> GenotypeSource:
    """The genotype source behind an input: a PLINK .bed, a VCF-Zarr store (a directory) or an
    RData file; ``spool_dir`` holds what an RData file's genotypes stream into."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if mpheno is not None and pheno is None:
        raise InputError("--mpheno needs --pheno FILE")
    if path.suffix.lower() == ".bed":
        return bed_source(path, pheno, mpheno)
    if path.is_dir():
        return vcf_zarr_source(path, pheno, mpheno)
    if pheno is not None:
        raise InputError(f"{path}: --pheno is for .bed and VCF Zarr inputs; an RData file's phenotypes are one of "
                         "its objects (--phenotypes NAME)")
    return rdata_source(path, genotypes, phenotypes, transpose, spool_dir, progress)


def convert(source: str | Path, store: str | Path, *, genotypes: str | None = None, phenotypes: str | None = None,
            transpose: bool | None = None, pheno: str | Path | None = None, mpheno: int | None = None,
            chunk_variants: int | None = None, overwrite: bool = False, progress: bool = True) -> Path:
    """Rewrite an RData file, PLINK .bed or VCF-Zarr store into a dask-h2 Zarr store at ``store``.

    The store records the conversion's key: every input file's path, size and CRC-32, and
    the options (:func:`dask_h2.io.fingerprint.conversion_key`). An interrupted
    conversion of the same inputs with the same options is resumed (``overwrite`` starts over)."""
    options = _checked_conversion_options(dict(genotypes=genotypes, phenotypes=phenotypes, transpose=transpose,
                                                pheno=pheno, mpheno=mpheno, chunk_variants=chunk_variants))
    return _convert(source, store, options, _conversion_key(source, options), overwrite, progress)


def _checked_conversion_options(options: dict) -> dict:
    """The options of :func:`convert` with their values checked (:class:`InputError` naming the option)."""
    for option, name in (("--chunk", "chunk_variants"), ("--mpheno", "mpheno")):
        if options.get(name) is not None:
            options[name] = check(option, positive_int, options[name])
    return options


def _conversion_key(source: str | Path, options: dict) -> dict:
    """:func:`conversion_key` of converting ``source`` with ``options`` (those of :func:`convert`)."""
    path = Path(source)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    inputs = [path.with_suffix(suffix) for suffix in (".bed", ".bim", ".fam")] if path.suffix.lower() == ".bed" \
        else [path]
    if options.get("pheno") is not None and Path(options["pheno"]).is_file():
        inputs.append(Path(options["pheno"]))
    recorded = {**options, "pheno": str(Path(options["pheno"]).resolve()) if options.get("pheno") else None}
    return conversion_key([p for p in inputs if p.exists()], recorded)


def _convert(source: str | Path, store: str | Path, options: dict, key: dict, overwrite: bool,
             progress: bool) -> Path:
    """Convert ``source`` into ``store`` with ``options`` (those of :func:`convert`), recording ``key``."""
    store = Path(store)
    refuse_complete(store, overwrite)
    reader_options = {name: value for name, value in options.items() if name != "chunk_variants"}
    with spool_directory(store) as spool_dir:
        genotype_source = source_for(source, spool_dir=spool_dir, progress=progress, **reader_options)
        genotype_source.attrs[CONVERSION_KEY] = key
        return _write_or_clean(genotype_source, store, options["chunk_variants"], overwrite, progress)


def _write_or_clean(source: GenotypeSource, store: Path, chunk_variants: int | None,
                    overwrite: bool, progress: bool) -> Path:
    """Write a store; on bad input remove the partial store so that nothing half-written remains
    (a disk that filled up keeps it: the same command resumes it once there is room)."""
    try:
        return write_store(source, store, chunk_variants, overwrite, progress)
    except InputError as exc:
        if not isinstance(exc, OutputError) and store.exists() and not is_complete(store):
            shutil.rmtree(store)
        raise


def simulate_to(out: str | Path, design: SimulationDesign, overwrite: bool = False, progress: bool = True) -> Path:
    """Simulate a data set to ``out``: an RData file (.RData/.rda) or a Zarr store (.zarr)."""
    out = Path(out)
    source = simulate(design)
    if out.suffix.lower() == ".zarr":
        return _write_or_clean(source, out, None, overwrite, progress)
    if not _is_rdata(out):
        raise InputError(f"{out}: output must end in .RData, .rda or .zarr")
    if out.exists() and not overwrite:
        raise InputError(f"{out}: already exists (use --overwrite to replace it)")
    write_rdata(out, _rdata_objects(source, progress))
    return out


def _rdata_objects(source: GenotypeSource, progress: bool):
    """(name, RMatrix) of a source laid out like GWAS.RData: samples × markers genotypes, then phenotypes."""
    def genotype_columns():
        with progress_bar(source.n_variants, "markers", "writing", enabled=progress) as bar:
            for start, stop in marker_blocks(source.n_variants, 4096):
                block = source.read_block(start, stop)
                bar.update(stop - start)
                columns = block.astype(np.int32)
                columns[block < 0] = NA_INTEGER
                yield columns

    yield "genotypes", RMatrix("integer", source.n_samples, source.n_variants, genotype_columns(),
                               list(source.sample_id), list(source.variant_id))
    traits, names = source.phenotypes()
    yield "phenotypes", RMatrix("double", source.n_samples, traits.shape[1], [traits.T], list(source.sample_id), list(names))


def grm(store: str | Path, settings: GRMSettings = GRMSettings(), memory_limit: int | None = None,
        recompute: bool = False, progress: bool = True, tile: int | None = None,
        client: Client | None = None) -> GRMResult:
    """K and its eigendecomposition for a store, computed once and cached in ``store/grm``.

    ``settings`` choose the scaling, marker QC and sample/marker lists; a cached GRM is
    reused only when they match. ``memory_limit`` (bytes, default 2 GiB) bounds the
    GRM's working memory (per worker on a cluster): it sets the marker chunk size and the
    reduction fan-in (:func:`dask_h2.planning.plan_grm`); when K's n × n buffers do not
    fit it, or ``tile`` (samples) is given, K is built in tiles (:mod:`dask_h2.kinship.tiled`).
    ``client``: the Dask cluster to compute on (default: the current client, else local threads).
    """
    root, samples, variants, key = grm_selection(store, settings)
    with store_lock(store, GRM_GROUP):
        cached = reusable_group(open_store(store), GRM_GROUP, key, recompute)
        if cached is not None:
            log.info(f"reusing the GRM in {store}/{GRM_GROUP}: same samples, markers, QC and scale")
            return _grm_result(cached)
        group, k = build_kinship_group(store, GRM_GROUP, key, settings, samples, variants, memory_limit, tile,
                                       client, progress)
        eigen = eigendecompose(k.matrix, overwrite=True)
        complete_group(store, group, {"n_markers_used": k.n_markers_used, "n_markers_dropped": k.n_markers_dropped,
                                      "marker_counts": k.marker_counts}, eigen)
        return _grm_result(group, eigen)


def grm_selection(store: str | Path, settings: GRMSettings) -> tuple[zarr.Group, np.ndarray, np.ndarray, dict]:
    """The store's root, the samples and variants (bool) that ``settings`` select and their cache key;
    refuses a sample count whose K the driver cannot hold (:func:`dask_h2.planning.check_driver_memory`)."""
    root = open_store(store)
    check_unique(read_strings(root, "sample_id"), f"{store}: sample_id")
    samples = sample_mask(read_strings(root, "sample_id"), settings)
    variants = variant_mask(read_strings(root, "variant_id"), settings)
    check_driver_memory(int(samples.sum()), str(store))
    return root, samples, variants, {**cache_key(settings, samples, variants), "genotypes": genotypes_key(root)}


def reusable_group(root: zarr.Group, name: str, key: dict, recompute: bool) -> zarr.Group | None:
    """The complete group ``name`` of the store if it was made with ``key`` (and not ``recompute``)."""
    cached = root.get(name)
    if not recompute and cached is not None and cached.attrs.get("complete") and cached.attrs.get("key") == key:
        return cached
    return None


def build_kinship_group(store: str | Path, name: str, key: dict, settings: GRMSettings, samples: np.ndarray,
                        variants: np.ndarray, memory_limit: int | None, tile: int | None, client: Client | None,
                        progress: bool,
                        partition: Partition | None = None) -> tuple[zarr.Group, Kinship | PartitionedKinship]:
    """A new group ``name`` (marked incomplete, recording ``key``) holding ``kinship``, the samples
    and the allele frequencies: K (n, n), or with a ``partition`` one K_k per part (P, n, n).

    K held in memory is computed before the group replaces an older one, so that an input error
    found in the pass over the genotypes (e.g. a part without markers) leaves the store as it was;
    a tiled K is written as it is computed, and its group removed after such an error."""
    memory_limit = None if memory_limit is None else check("--memory-limit", memory_size, memory_limit)
    tile = None if tile is None else check("--tile", positive_int, tile)
    root = open_store(store)
    with using(client):
        try:
            dosage = root["call_dosage"]
            plan = grm_plan(int(samples.sum()), dosage.shape[0], memory_limit, tile, store_chunk=dosage.chunks[0],
                            parts=partition.size if partition else 1)
        except ValueError as exc:
            raise InputError(f"--memory-limit: {exc}") from None
        with output_errors(f"{store}/{name}", "writing the GRM into the store"):
            def new_group() -> zarr.Group:
                group = zarr.open_group(store, mode="r+").create_group(name, overwrite=True)
                group.attrs.update({"complete": False, "key": key, "scale": settings.scale})
                return group

            with dask_progress("GRM", enabled=progress):
                try:
                    group, k = _kinship(dosage, new_group, plan, settings, samples, variants, partition)
                except ValueError as exc:
                    if name in zarr.open_group(store, mode="r"):
                        del zarr.open_group(store, mode="r+")[name]
                    raise InputError(f"{store}: {exc}") from None
            group.create_array("sample_index", data=np.flatnonzero(samples), dimension_names=("grm_samples",))
            group.create_array("variant_allele_frequency", data=k.allele_frequency, dimension_names=("variants",))
    return group, k


def complete_group(store: str | Path, group: zarr.Group, attrs: dict, eigen: Eigen,
                   arrays: dict[str, np.ndarray] | None = None) -> None:
    """Finish a GRM ``group`` of ``store``: its ``attrs``, extra 1-d ``arrays`` over the variants, the
    eigendecomposition, then ``complete`` (last, so that an interrupted group is never reused)."""
    with output_errors(f"{store}/{group.basename}", "writing the GRM into the store"):
        group.attrs.update(attrs)
        for name, data in (arrays or {}).items():
            group.create_array(name, data=data, dimension_names=("variants",))
        group.create_array("eigenvalues", data=eigen.values, dimension_names=("components",))
        group.create_array("eigenvectors", data=eigen.vectors, dimension_names=("grm_samples", "components"))
        group.attrs["complete"] = True


def _kinship(dosage: zarr.Array, new_group: Callable[[], zarr.Group], plan: ComputePlan | TilePlan,
             settings: GRMSettings, samples: np.ndarray, variants: np.ndarray,
             partition: Partition | None) -> tuple[zarr.Group, Kinship | PartitionedKinship]:
    """K of the ``samples`` (bool) from the ``variants`` (bool) by ``plan``, written to ``kinship`` in
    the group that ``new_group()`` creates (when the output is first needed); with a ``partition``,
    its K_k stacked (P, n, n)."""
    index = None if samples.all() else np.flatnonzero(samples)
    n = int(samples.sum())
    names = ("grm_samples", "grm_samples_2") if partition is None else ("parts", "grm_samples", "grm_samples_2")
    shape = (n, n) if partition is None else (partition.size, n, n)
    if isinstance(plan, TilePlan):
        group = new_group()
        out = group.create_array("kinship", shape=shape, chunks=(1,) * (len(shape) - 2) + (plan.tile, plan.tile),
                                 dtype="float64", dimension_names=names)
        return group, tiled_kinship(dosage, out, plan, settings.scale, settings.qc, index, variants,
                                    partition or Partition())
    columns = da.from_zarr(dosage)
    columns = columns if index is None else columns[:, index]
    if partition is None:
        k = kinship(columns, settings.scale, plan, settings.qc, variants)
        group = new_group()
        group.create_array("kinship", data=k.matrix, dimension_names=names)
    else:
        k = partitioned_kinship(columns, partition, settings.scale, plan, settings.qc, variants)
        group = new_group()
        group.create_array("kinship", data=k.matrices, chunks=(1, n, n), dimension_names=names)
    return group, k


def _grm_result(group: zarr.Group, eigen: Eigen | None = None) -> GRMResult:
    eigen = eigen or Eigen(group["eigenvalues"][:], group["eigenvectors"][:])
    return GRMResult(group["kinship"], eigen, int(group.attrs["n_markers_used"]), int(group.attrs["n_markers_dropped"]),
                     str(group.attrs["scale"]), group["sample_index"][:], dict(group.attrs["marker_counts"]))


def fit(store: str | Path, method: str = "REML", pcs: int = 10, settings: GRMSettings = GRMSettings(),
        covar: str | Path | None = None, qcovar: str | Path | None = None, constrain: bool = True,
        progress: bool = True, client: Client | None = None, rhe: RHESettings | None = None,
        memory_limit: int | None = None, prevalence: str | float | Sequence[float | None] | None = None) -> FitReport:
    """h² of every trait in ``store`` by ``method``: "REML" or "ML" from one eigendecomposition of
    the GRM (the exact path), or "RHE", randomized Haseman–Elston from the genotypes with no n × n
    matrix (:func:`dask_h2.moments.fit.fit_rhe`, set by ``rhe``).

    The GRM is that of ``settings`` (computed or reused); covariates from the ``covar``
    (categorical) and ``qcovar`` (quantitative) files join the intercept and PCs;
    ``constrain=False`` allows h² < 0 (REML, ML). ``client``: the Dask cluster to compute on;
    ``memory_limit``: bytes for the moments passes (per worker on a cluster). ``prevalence``
    (REML, ML): see :meth:`dask_h2.greml.problem.FitProblem.fit` (liability scale of case-control traits).
    """
    method = _check_method(method)
    if method == "RHE":
        if prevalence is not None:
            raise InputError("--prevalence goes with --method reml or ml (the liability scale of the exact path)")
        return fit_rhe(store, settings, rhe or RHESettings(), pcs, covar, qcovar, progress, client, memory_limit)
    return load(store, settings, covar, qcovar, progress, client, memory_limit).fit(method, pcs, constrain,
                                                                                   prevalence)


def load(store: str | Path, settings: GRMSettings = GRMSettings(), covar: str | Path | None = None,
         qcovar: str | Path | None = None, progress: bool = True, client: Client | None = None,
         memory_limit: int | None = None) -> FitProblem:
    """The fit problem of a store: its GRM (computed or reused, on ``client``'s cluster if given,
    within ``memory_limit`` bytes), traits and covariates over the GRM's samples."""
    traits, names = read_traits(open_store(store), store)
    result = grm(store, settings, memory_limit, progress=progress, client=client)
    root = open_store(store)
    traits = traits[result.sample_index]
    covariates = read_covariates(read_strings(root, "sample_id")[result.sample_index], covar, qcovar)
    extra = {"marker_counts": result.marker_counts, "maf": settings.qc.maf, "max_missing": settings.qc.max_missing,
             "n_samples_removed": int(root["sample_id"].shape[0] - traits.shape[0])}
    return FitProblem(result.eigen, traits, names, covariates, _cached_subset_eigen(store, result),
                      result.n_markers_used, result.n_markers_dropped, result.scale, extra,
                      lambda rows, cols: result.kinship.oindex[rows, cols])


def load_gcta(prefix: str | Path, pheno: str | Path, covar: str | Path | None = None,
              qcovar: str | Path | None = None) -> FitProblem:
    """The fit problem of a GCTA GRM (``PREFIX.grm.bin/.grm.N.bin/.grm.id``) with phenotypes
    from ``pheno`` (FID IID y1 y2 …), matched by IID; no store is involved."""
    gcta_grm = read_grm(prefix)
    traits, names = read_phenotypes(pheno, gcta_grm.iid)
    covariates = read_covariates(gcta_grm.iid, covar, qcovar)
    n_markers = int(gcta_grm.n_markers.max()) if gcta_grm.n_markers is not None else 0
    K = gcta_grm.kinship
    return FitProblem(eigendecompose(K.copy(), overwrite=True), traits, np.array(names, dtype=object), covariates,
                      dense_subset_eigen(K), n_markers, 0, "gcta-grm", {"grm": str(prefix)},
                      lambda rows, cols: K[np.ix_(rows, cols)])


def export_gcta(store: str | Path, prefix: str | Path, settings: GRMSettings = GRMSettings(),
                progress: bool = True) -> list[Path]:
    """Write the store's GRM (computed or reused) as GCTA's ``PREFIX.grm.bin/.grm.N.bin/.grm.id``
    (FID = IID; every entry counts all markers used, missing calls being mean-imputed)."""
    result = grm(store, settings, progress=progress)
    sample_id = read_strings(open_store(store), "sample_id")[result.sample_index]
    return write_grm(prefix, result.kinship[:], sample_id, result.n_markers_used)


def _check_method(method: str) -> str:
    return check("--method", one_of("REML", "ML", "RHE"), method)


def _cached_subset_eigen(store: str | Path, result: GRMResult) -> Callable[[np.ndarray], Eigen]:
    """Eigendecompositions of K[index][:, index] (``index`` into the GRM's samples), each computed
    once and kept in ``store/grm/subsets/<hash of index>`` with the key of the GRM it comes from
    (recomputing the GRM discards them); where the store cannot be written (read-only), computed
    in memory, which is said in one line."""
    grm_key = dict(open_store(store)[GRM_GROUP].attrs["key"])

    def subset_eigen(index: np.ndarray) -> Eigen:
        index = np.asarray(index, dtype=np.int64)
        path = f"{GRM_GROUP}/{SUBSETS_GROUP}/{hashlib.sha1(index.tobytes()).hexdigest()[:20]}"
        with store_lock(store, path):
            return _subset_eigen(index, path)

    def _subset_eigen(index: np.ndarray, path: str) -> Eigen:
        cached = open_store(store).get(path)
        if cached is not None and cached.attrs.get("complete") and cached.attrs.get("grm_key") == grm_key \
                and np.array_equal(cached["index"][:], index):
            return Eigen(cached["eigenvalues"][:], cached["eigenvectors"][:])
        eigen = eigendecompose(result.kinship.oindex[index, index], overwrite=True)
        try:
            group = zarr.open_group(store, mode="r+").create_group(path, overwrite=True)
            group.attrs.update({"complete": False, "grm_key": grm_key})
            group.create_array("index", data=index, dimension_names=("subset_samples",))
            group.create_array("eigenvalues", data=eigen.values, dimension_names=("components",))
            group.create_array("eigenvectors", data=eigen.vectors, dimension_names=("subset_samples", "components"))
            group.attrs["complete"] = True
        except OSError as exc:
            log.warning(f"could not cache the eigendecomposition of K for {index.size} samples in {store}/{path} "
                        f"({exc.strerror or exc}); computed in memory")
        return eigen

    return subset_eigen


def run(source: str | Path, out_prefix: str | Path, method: str = "REML", pcs: int = 10,
        settings: GRMSettings = GRMSettings(), covar: str | Path | None = None, qcovar: str | Path | None = None,
        constrain: bool = True, overwrite: bool = False, progress: bool = True, client: Client | None = None,
        rhe: RHESettings | None = None, memory_limit: int | None = None,
        prevalence: str | float | Sequence[float | None] | None = None, **convert_options) -> FitReport:
    """``dask-h2 run`` without the report files: :func:`store_for_run`, then :func:`fit`."""
    store = store_for_run(source, out_prefix, overwrite, progress, **convert_options)
    return fit(store, method, pcs, settings, covar=covar, qcovar=qcovar, constrain=constrain, progress=progress,
               client=client, rhe=rhe, memory_limit=memory_limit, prevalence=prevalence)


def store_for_run(source: str | Path, out_prefix: str | Path, overwrite: bool = False, progress: bool = True,
                  **convert_options) -> str | Path:
    """The store behind ``dask-h2 run``: ``source`` itself if it is a store, else ``OUT_PREFIX.zarr``,
    reused only when it was converted from the same input files (by content) with the same
    options, and converted again otherwise; the choice is logged in one line."""
    if is_url(source) or (Path(source).is_dir() and not is_vcf_zarr(source)):
        open_store(source)
        return source
    store = Path(f"{out_prefix}.zarr")
    options = dict(genotypes=None, phenotypes=None, transpose=None, pheno=None, mpheno=None, chunk_variants=None)
    options = _checked_conversion_options({**options, **convert_options})
    key = _conversion_key(source, options)
    if not overwrite and is_complete(store):
        recorded = zarr.open_group(store, mode="r").attrs[ATTRS_KEY].get(CONVERSION_KEY)
        if recorded == key:
            log.info(f"reusing {store}: converted from the same inputs with the same options")
            return store
        log.info(f"converting {store} again: {describe_difference(recorded, key)}")
        overwrite = True
    return _convert(source, store, options, key, overwrite, progress)
