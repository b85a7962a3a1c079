"""VCF Zarr stores (bio2zarr's layout, as sgkit reads them) as a genotype source.

``call_genotype`` (variants, samples, ploidy = 2) holds allele indices, −1 missing
and −2 padding; a call's dosage is its number of alternate alleles (index > 0), and a
call with any missing allele is missing.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import zarr

from dask_h2.errors import InputError

from dask_h2.io.phenotypes import read_phenotypes
from dask_h2.io.sources import GenotypeSource, file_source


def is_vcf_zarr(path: str | Path) -> bool:
    """True for a directory holding a Zarr group with a ``call_genotype`` array."""
    try:
        return Path(path).is_dir() and "call_genotype" in zarr.open_group(path, mode="r")
    except Exception:  # not a Zarr group at all
        return False


def _strings(array: zarr.Array) -> np.ndarray:
    """A string array (any of Zarr's string encodings) as Python str objects."""
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(array[:]).astype(object)],
                    dtype=object)


def _variant_ids(root: zarr.Group, n_variants: int) -> np.ndarray:
    """``variant_id``, with ``contig:position`` (or ``variant<j>``) where it is missing ('.')."""
    ids = _strings(root["variant_id"]) if "variant_id" in root else np.full(n_variants, ".", dtype=object)
    missing = (ids == ".") | (ids == "")
    if missing.any() and all(name in root for name in ("contig_id", "variant_contig", "variant_position")):
        contig = _strings(root["contig_id"])[root["variant_contig"][:]]
        position = root["variant_position"][:]
        ids[missing] = [f"{c}:{p}" for c, p in zip(contig[missing], position[missing])]
    elif missing.any():
        ids[missing] = [f"variant{j + 1}" for j in np.flatnonzero(missing)]
    return ids


def vcf_zarr_source(path: str | Path, *, pheno: str | Path | None = None, mpheno: int | None = None) -> GenotypeSource:
    """Diploid dosages from a VCF Zarr store; phenotypes from ``pheno`` (FID IID y1 …), else none."""
    path = Path(path)
    if not is_vcf_zarr(path):
        raise InputError(f"{path}: not a VCF Zarr store (a Zarr group with call_genotype), RData file or PLINK .bed")
    root = zarr.open_group(path, mode="r")
    genotype = root["call_genotype"]
    if genotype.ndim != 3 or genotype.shape[2] != 2 or genotype.dtype.kind != "i":
        raise InputError(f"{path}: call_genotype is {genotype.dtype} {genotype.shape}; dask-h2 needs integer "
                         "allele indices (variants, samples, 2) of diploid calls")
    n_variants, n_samples, _ = genotype.shape
    sample_id = _strings(root["sample_id"]) if "sample_id" in root else np.array(
        [f"sample{i + 1}" for i in range(n_samples)], dtype=object)
    variant_id = _variant_ids(root, n_variants)
    table = (read_phenotypes(pheno, sample_id, mpheno=mpheno) if pheno is not None
             else (np.empty((n_samples, 0)), np.empty(0, dtype=object)))

    def read_block(start: int, stop: int) -> np.ndarray:
        calls = genotype[start:stop]
        dosage = np.count_nonzero(calls > 0, axis=2).astype(np.int8)
        dosage[(calls == -1).any(axis=2)] = -1
        return dosage

    return file_source(path, source_format="VCF Zarr", sample_id=sample_id, variant_id=variant_id,
                       read_block=read_block, table=table, pheno=pheno, mpheno=mpheno)
