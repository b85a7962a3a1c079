"""Store-level API: convert, simulate, grm, fit and run, as the CLI exposes them."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import dask.array as da
import numpy as np
import zarr

from .convert.bed_input import bed_source
from .convert.rdata_input import rdata_source
from .convert.rdata_writer import RMatrix, write_rdata
from .convert.source import GenotypeSource, marker_blocks, write_store
from .convert.rdata_format import NA_INTEGER
from .eigen import Eigen, eigendecompose
from .errors import InputError
from .fit import fit_traits
from .grm import kinship
from .likelihood import Method
from .progress import dask_progress, progress_bar
from .report import FitReport
from .resources import plan_grm
from .selection import GRMSettings, cache_key, sample_mask, variant_mask
from .simulate import SimulationDesign, simulate
from .store import ATTRS_KEY, GRM_GROUP, is_complete, open_store, read_strings

RDATA_SUFFIXES = (".rdata", ".rda")


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
               transpose: bool | None = None, pheno: str | Path | None = None) -> GenotypeSource:
    """The genotype source behind an input file, chosen by its suffix (.RData/.rda or .bed)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.suffix.lower() == ".bed":
        return bed_source(path, pheno)
    if _is_rdata(path) or path.is_file():
        return rdata_source(path, genotypes, phenotypes, transpose)
    raise InputError(f"{path}: not an RData file or PLINK .bed")


def convert(source: str | Path, store: str | Path, *, genotypes: str | None = None, phenotypes: str | None = None,
            transpose: bool | None = None, pheno: str | Path | None = None, chunk_variants: int | None = None,
            overwrite: bool = False, progress: bool = True) -> Path:
    """Rewrite an RData file or PLINK .bed into a dask-h2 Zarr store at ``store``."""
    genotype_source = source_for(source, genotypes, phenotypes, transpose, pheno)
    stat = Path(source).stat()
    genotype_source.attrs.update(source_size=stat.st_size, source_mtime_ns=stat.st_mtime_ns)
    return _write_or_clean(genotype_source, Path(store), chunk_variants, overwrite, progress)


def _write_or_clean(source: GenotypeSource, store: Path, chunk_variants: int | None,
                    overwrite: bool, progress: bool) -> Path:
    """Write a store; on bad input remove the partial store so that nothing half-written remains."""
    try:
        return write_store(source, store, chunk_variants, overwrite, progress)
    except InputError:
        if store.exists() and not is_complete(store):
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
        recompute: bool = False, progress: bool = True) -> GRMResult:
    """K and its eigendecomposition for a store, computed once and cached in ``store/grm``.

    ``settings`` choose the scaling, marker QC and sample/marker lists; a cached GRM is
    reused only when they match. ``memory_limit`` (bytes, default 2 GiB) bounds the
    GRM's working memory: it sets the marker chunk size and the reduction fan-in
    (:func:`dask_h2.resources.plan_grm`).
    """
    root = open_store(store)
    samples = sample_mask(read_strings(root, "sample_id"), settings)
    variants = variant_mask(read_strings(root, "variant_id"), settings)
    key = cache_key(settings, samples, variants)
    cached = root.get(GRM_GROUP)
    if not recompute and cached is not None and cached.attrs.get("complete") and cached.attrs.get("key") == key:
        return _grm_result(cached)
    dosage = da.from_zarr(root["call_dosage"])
    if not samples.all():
        dosage = dosage[:, np.flatnonzero(samples)]
    try:
        plan = plan_grm(int(samples.sum()), memory_limit)
    except ValueError as exc:
        raise InputError(f"--memory-limit: {exc}") from None
    with dask_progress("GRM", enabled=progress):
        try:
            k = kinship(dosage, settings.scale, plan, settings.qc, variants)
        except ValueError as exc:
            raise InputError(f"{store}: {exc}") from None
    root = zarr.open_group(store, mode="r+")
    group = root.create_group(GRM_GROUP, overwrite=True)
    group.attrs.update({"complete": False, "key": key, "scale": settings.scale, "n_markers_used": k.n_markers_used,
                        "n_markers_dropped": k.n_markers_dropped, "marker_counts": k.marker_counts})
    group.create_array("sample_index", data=np.flatnonzero(samples), dimension_names=("grm_samples",))
    group.create_array("kinship", data=k.matrix, dimension_names=("grm_samples", "grm_samples_2"))
    group.create_array("variant_allele_frequency", data=k.allele_frequency, dimension_names=("variants",))
    eigen = eigendecompose(k.matrix, overwrite=True)
    group.create_array("eigenvalues", data=eigen.values, dimension_names=("components",))
    group.create_array("eigenvectors", data=eigen.vectors, dimension_names=("grm_samples", "components"))
    group.attrs["complete"] = True
    return _grm_result(group, eigen)


def _grm_result(group: zarr.Group, eigen: Eigen | None = None) -> GRMResult:
    eigen = eigen or Eigen(group["eigenvalues"][:], group["eigenvectors"][:])
    return GRMResult(group["kinship"], eigen, int(group.attrs["n_markers_used"]), int(group.attrs["n_markers_dropped"]),
                     str(group.attrs["scale"]), group["sample_index"][:], dict(group.attrs["marker_counts"]))


def fit(store: str | Path, method: Method = "REML", pcs: int = 10, settings: GRMSettings = GRMSettings(),
        covariates: np.ndarray | None = None, constrain: bool = True, progress: bool = True) -> FitReport:
    """h² of every trait in ``store`` by ``method`` ("REML" or "ML"), from one eigendecomposition.

    The GRM is that of ``settings`` (computed or reused); ``covariates`` (n_store, c)
    join the intercept and PCs; ``constrain=False`` allows h² < 0.
    """
    method = method.upper()
    if method not in ("REML", "ML"):
        raise InputError(f"--method {method}: expected reml or ml")
    result = grm(store, settings, progress=progress)
    root = open_store(store)
    traits, names = root["traits"][:][result.sample_index], read_strings(root, "trait_name")
    if covariates is not None:
        covariates = np.asarray(covariates)[result.sample_index]
    if traits.shape[1] == 0:
        raise InputError(f"{store}: the store has no phenotypes to fit")
    fits = fit_traits(result.eigen, traits, names, method, pcs, covariates,
                      kinship_subset=lambda index: result.kinship.oindex[index, index], constrain=constrain)
    extra = {"marker_counts": result.marker_counts, "maf": settings.qc.maf, "max_missing": settings.qc.max_missing,
             "n_samples_removed": int(root["sample_id"].shape[0] - traits.shape[0])}
    return FitReport(fits, traits.shape[0], result.n_markers_used, result.n_markers_dropped, result.scale, pcs, method,
                     extra)


def store_for_run(source: str | Path, out_prefix: str | Path, overwrite: bool = False, progress: bool = True,
                  **convert_options) -> Path:
    """The store behind ``dask-h2 run``: ``source`` itself if it is a store, else ``OUT_PREFIX.zarr``,
    reused when it was converted from the same unchanged file."""
    source = Path(source)
    if source.is_dir():
        open_store(source)
        return source
    store = Path(f"{out_prefix}.zarr")
    if not overwrite and _converted_from(store, source):
        return store
    return convert(source, store, overwrite=overwrite, progress=progress, **convert_options)


def _converted_from(store: Path, source: Path) -> bool:
    if not (source.is_file() and is_complete(store)):
        return False
    attrs, stat = zarr.open_group(store, mode="r").attrs[ATTRS_KEY], source.stat()
    return (attrs.get("source"), attrs.get("source_size"), attrs.get("source_mtime_ns")) == (
        str(source.resolve()), stat.st_size, stat.st_mtime_ns)
