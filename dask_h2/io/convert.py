"""Conversions into a dask-h2 store: an RData file, a PLINK .bed or .pgen, a BGEN file or a VCF Zarr store read once,
streaming, into the store's layout; a simulated data set written as a store or an RData file;
and the store that ``run`` uses, converted again only when its inputs or options changed."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import zarr

from dask_h2.checks import PARAMETERS, check
from dask_h2.errors import NAMED, InputError, OutputError, ParameterError
from dask_h2.io.fingerprint import conversion_key, describe_difference
from dask_h2.io.pgen_input import pgen_files
from dask_h2.io.rdata_format import NA_INTEGER
from dask_h2.io.rdata_writer import RMatrix, write_rdata
from dask_h2.io.sources import GenotypeSource, marker_blocks, write_store
from dask_h2.io.spool import spool_directory
from dask_h2.io.vcf_zarr_input import is_vcf_zarr
from dask_h2.progress import progress_bar
from dask_h2.store import ATTRS_KEY, is_complete, is_url, open_store, refuse_complete

if TYPE_CHECKING:
    from dask_h2.io.simulate import SimulationDesign

log = logging.getLogger("dask_h2")


RDATA_SUFFIXES = (".rdata", ".rda")


CONVERSION_KEY = "conversion_key"  # in the store's attributes: the inputs and options that made it


def _is_rdata(path: Path) -> bool:
    return path.suffix.lower() in RDATA_SUFFIXES


def source_for(path: str | Path, *, genotypes: str | None = None, phenotypes: str | None = None,
               transpose: bool | None = None, pheno: str | Path | None = None, mpheno: int | None = None,
               hard_call_threshold: float | None = None, spool_dir: Path | None = None,
               progress: bool = False) -> GenotypeSource:
    """The genotype source behind an input: a PLINK .bed or .pgen, a BGEN file, a VCF-Zarr store
    (a directory) or an RData file; ``spool_dir`` holds what an RData file's genotypes stream into.
    Each reader, and the library behind it, is loaded only for its own inputs."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if mpheno is not None and pheno is None:
        raise ParameterError("{mpheno} needs {pheno}", mpheno=NAMED, pheno=NAMED)
    suffix = path.suffix.lower()
    if suffix == ".pgen":
        from dask_h2.io.pgen_input import pgen_source

        return pgen_source(path, pheno=pheno, mpheno=mpheno, hard_call_threshold=hard_call_threshold)
    if suffix == ".bgen":
        from dask_h2.io.bgen_input import bgen_source

        return bgen_source(path, pheno=pheno, mpheno=mpheno, hard_call_threshold=hard_call_threshold,
                           spool_dir=spool_dir)
    if hard_call_threshold is not None:
        raise ParameterError(f"{path}: {{hard_call_threshold}} is for .pgen and BGEN inputs (dosages); this input "
                             "holds calls", hard_call_threshold=NAMED)
    if suffix == ".bed":
        from dask_h2.io.bed_input import bed_source

        return bed_source(path, pheno=pheno, mpheno=mpheno)
    if path.is_dir():
        from dask_h2.io.vcf_zarr_input import vcf_zarr_source

        return vcf_zarr_source(path, pheno=pheno, mpheno=mpheno)
    if pheno is not None:
        raise ParameterError(f"{path}: {{pheno}} is for .bed and VCF Zarr inputs; an RData file's phenotypes are one "
                             "of its objects ({phenotypes})", pheno=NAMED, phenotypes=NAMED)
    from dask_h2.io.rdata_input import rdata_source

    return rdata_source(
        path, genotypes=genotypes, phenotypes=phenotypes, transpose=transpose, spool_dir=spool_dir, progress=progress
    )


def convert(source: str | Path, store: str | Path, *, genotypes: str | None = None, phenotypes: str | None = None,
            transpose: bool | None = None, pheno: str | Path | None = None, mpheno: int | None = None,
            hard_call_threshold: float | None = None, chunk_variants: int | None = None, overwrite: bool = False,
            progress: bool = True) -> Path:
    """Rewrite an RData file, PLINK .bed or .pgen, BGEN file or VCF-Zarr store into a dask-h2 Zarr store at ``store``.

    The store records the conversion's key: every input file's path, size and CRC-32, and
    the options (:func:`dask_h2.io.fingerprint.conversion_key`). An interrupted
    conversion of the same inputs with the same options is resumed (``overwrite`` starts over)."""
    options = _checked_conversion_options(dict(genotypes=genotypes, phenotypes=phenotypes, transpose=transpose,
                                                pheno=pheno, mpheno=mpheno, hard_call_threshold=hard_call_threshold,
                                                chunk_variants=chunk_variants))
    return _convert(source, store, options, _conversion_key(source, options), overwrite=overwrite, progress=progress)


def _checked_conversion_options(options: dict) -> dict:
    """The options of :func:`convert` with their values checked (:class:`InputError` naming the option)."""
    for name in ("chunk_variants", "mpheno", "hard_call_threshold"):
        if options.get(name) is not None:
            options[name] = check(options[name], PARAMETERS[name], parameter=name)
    return options


def _conversion_key(source: str | Path, options: dict) -> dict:
    """:func:`conversion_key` of converting ``source`` with ``options`` (those of :func:`convert`)."""
    path = Path(source)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    inputs = [path.with_suffix(s) for s in (".bed", ".bim", ".fam")] if suffix == ".bed" \
        else list(pgen_files(path)) if suffix == ".pgen" \
        else [path, path.with_suffix(".sample")] if suffix == ".bgen" else [path]
    if options.get("pheno") is not None and Path(options["pheno"]).is_file():
        inputs.append(Path(options["pheno"]))
    recorded = {**options, "pheno": str(Path(options["pheno"]).resolve()) if options.get("pheno") else None}
    return conversion_key([p for p in inputs if p.exists()], recorded)


def _convert(source: str | Path, store: str | Path, options: dict, key: dict, *, overwrite: bool,
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
        return write_store(source, store, chunk_variants=chunk_variants, overwrite=overwrite, progress=progress)
    except InputError as exc:
        if not isinstance(exc, OutputError) and store.exists() and not is_complete(store):
            shutil.rmtree(store)
        raise


def simulate_to(out: str | Path, design: SimulationDesign, *, overwrite: bool = False, progress: bool = True) -> Path:
    """Simulate a data set to ``out``: an RData file (.RData/.rda) or a Zarr store (.zarr)."""
    from dask_h2.io.simulate import simulate

    out = Path(out)
    source = simulate(design)
    if out.suffix.lower() == ".zarr":
        return _write_or_clean(source, out, None, overwrite, progress)
    if not _is_rdata(out):
        raise InputError(f"{out}: output must end in .RData, .rda or .zarr")
    if out.exists() and not overwrite:
        raise ParameterError(f"{out}: already exists (use {{overwrite}} to replace it)", overwrite=True)
    write_rdata(out, _rdata_objects(source, progress))
    return out


def _rdata_objects(source: GenotypeSource, progress: bool):
    """(name, RMatrix) of a source laid out like GWAS.RData: samples × markers genotypes, then phenotypes."""
    def genotype_columns():
        with progress_bar(source.n_variants, unit="markers", desc="writing", enabled=progress) as bar:
            for start, stop in marker_blocks(source.n_variants, 4096):
                block = source.read_block(start, stop)
                bar.update(stop - start)
                columns = block.astype(np.int32)
                columns[block < 0] = NA_INTEGER
                yield columns

    yield "genotypes", RMatrix(kind="integer", nrow=source.n_samples, ncol=source.n_variants, blocks=genotype_columns(),
                               rownames=list(source.sample_id), colnames=list(source.variant_id))
    traits, names = source.phenotypes()
    yield (
        "phenotypes",
        RMatrix(
            kind="double",
            nrow=source.n_samples,
            ncol=traits.shape[1],
            blocks=[traits.T],
            rownames=list(source.sample_id),
            colnames=list(names),
        ),
    )


def store_for_run(source: str | Path, out_prefix: str | Path, *, overwrite: bool = False, progress: bool = True,
                  **convert_options) -> str | Path:
    """The store behind ``dask-h2 run``: ``source`` itself if it is a store, else ``OUT_PREFIX.zarr``,
    reused only when it was converted from the same input files (by content) with the same
    options, and converted again otherwise; the choice is logged in one line."""
    if is_url(source) or (Path(source).is_dir() and not is_vcf_zarr(source)):
        open_store(source)
        return source
    store = Path(f"{out_prefix}.zarr")
    options = dict(genotypes=None, phenotypes=None, transpose=None, pheno=None, mpheno=None, hard_call_threshold=None,
                   chunk_variants=None)
    options = _checked_conversion_options({**options, **convert_options})
    key = _conversion_key(source, options)
    if not overwrite and is_complete(store):
        recorded = zarr.open_group(store, mode="r").attrs[ATTRS_KEY].get(CONVERSION_KEY)
        if recorded == key:
            log.info(f"reusing {store}: converted from the same inputs with the same options")
            return store
        log.info(f"converting {store} again: {describe_difference(recorded, key)}")
        overwrite = True
    return _convert(source, store, options, key, overwrite=overwrite, progress=progress)
