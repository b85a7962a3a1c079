"""BGEN genotype probabilities (layout 2: BGEN v1.2 and v1.3, any bit depth, zlib, zstd or
uncompressed, phased or not) as a genotype source of hard calls.

Decoded by the ``bgen`` package (its float32 dosage of the second allele is 5–10× cheaper
than cbgen's), called by plink2's hard-call rule (:mod:`dask_h2.io.hard_calls`). The
rare variant with a sample whose float32 dosage lies too near a step of the rule to be
called surely is read again exactly, in float64, by ``cbgen``.

The counted allele is the second of each variant, the ALT allele of
``plink2 --bgen IN.bgen ref-first`` (what .bim then calls A1, and what sgkit counts): a
BGEN written by ``plink2 --export bgen-1.2 ref-first`` from a .bed gives the .bed's
store. Sample IDs are ``IN.sample``'s ID_2 column (as plink2 reads it) if that file
exists, else the IDs inside the BGEN. Refused, one line each: BGEN v1.1 (layout 1),
variants with other than two alleles, samples that are not diploid.
"""
from __future__ import annotations

from pathlib import Path

import bgen
import numpy as np

from dask_h2.errors import InputError
from dask_h2.io.hard_calls import DEFAULT_HARD_CALL_THRESHOLD, DOSAGE_ONE, HARD_CALL_RULE, hard_calls
from dask_h2.io.phenotypes import read_phenotypes
from dask_h2.io.sources import GenotypeSource, file_source, marker_blocks

PIECE = 32  # markers decoded into a cache-resident float32 buffer at a time


def read_sample_file(path: Path) -> np.ndarray:
    """The ID_2 column of an Oxford .sample file (two header lines: names, then types ``0 0 …``)."""
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    if len(lines) < 2 or "ID_2" not in lines[0] or lines[1][:2] != ["0", "0"]:
        raise InputError(f"{path}: not an Oxford .sample file (a header 'ID_1 ID_2 missing …', then '0 0 0 …')")
    column = lines[0].index("ID_2")
    short = next((k for k, row in enumerate(lines[2:], 3) if len(row) <= column), None)
    if short is not None:
        raise InputError(f"{path}: line {short}: no ID_2 column")
    return np.array([row[column] for row in lines[2:]], dtype=object)


def _open(path: Path) -> bgen.BgenReader:
    """The ``bgen`` reader of ``path``, its variant index read (a truncated file fails here)."""
    try:
        reader = bgen.BgenReader(str(path), delay_parsing=True)
    except Exception as exc:  # the library raises ValueError, OSError or RuntimeError for damaged files
        raise InputError(f"{path}: unreadable BGEN file ({exc})") from None
    if reader.header.layout != 2:
        raise InputError(f"{path}: BGEN v1.1 (layout {reader.header.layout}) is not read; "
                         "re-export it as BGEN v1.2 (plink2 --bgen IN.bgen ref-first --export bgen-1.2 bits=8)")
    return reader


def _sample_ids(path: Path, reader: bgen.BgenReader) -> np.ndarray:
    sample_file = path.with_suffix(".sample")
    n_samples = reader.header.nsamples
    if sample_file.is_file():
        ids = read_sample_file(sample_file)
        if len(ids) != n_samples:
            raise InputError(f"{sample_file}: {len(ids)} samples, but {path.name} holds {n_samples}")
        return ids
    if not reader.header.has_sample_ids:
        raise InputError(f"{sample_file}: no such file, and {path.name} holds no sample IDs")
    return np.array(reader.samples, dtype=object)


def _variant_ids(path: Path, reader: bgen.BgenReader) -> np.ndarray:
    """The rsIDs (as plink2 names BGEN variants), else the variant IDs, else ``chrom:pos``."""
    try:
        rsids, varids = reader.rsids(), reader.varids()
        chroms, positions = reader.chroms(), reader.positions()
    except Exception as exc:  # a truncated or damaged variant index
        raise InputError(f"{path}: unreadable BGEN file ({exc})") from None
    return np.array([r if r not in ("", ".") else v if v not in ("", ".") else f"{c}:{p}"
                     for r, v, c, p in zip(rsids, varids, chroms, positions)], dtype=object)


def bgen_source(path: str | Path, *, pheno: str | Path | None = None, mpheno: int | None = None,
                hard_call_threshold: float | None = None, spool_dir: Path) -> GenotypeSource:
    """Hard calls (copies of the second allele) of a BGEN file by plink2's rule at ``hard_call_threshold``
    (default plink2's 0.1), with phenotypes from ``pheno`` (FID IID y1 y2 …), else none.
    ``spool_dir`` holds cbgen's index of the file if an exact re-reading is needed."""
    path = Path(path)
    threshold = DEFAULT_HARD_CALL_THRESHOLD if hard_call_threshold is None else hard_call_threshold
    reader = _open(path)
    sample_id = _sample_ids(path, reader)
    variant_id = _variant_ids(path, reader)
    n_samples = len(sample_id)
    table = (read_phenotypes(pheno, sample_id, mpheno=mpheno) if pheno is not None
             else (np.empty((n_samples, 0)), np.empty(0, dtype=object)))
    dosage = np.empty((PIECE, n_samples), dtype=np.float32)

    def read_block(start: int, stop: int) -> np.ndarray:
        block = np.empty((stop - start, n_samples), dtype=np.int8)
        for first, last in marker_blocks(stop - start, PIECE):
            for k in range(first, last):
                dosage[k - first] = _alt_dosage(path, reader, start + k, variant_id[start + k])
            ambiguous = hard_calls(dosage[:last - first], out=block[first:last], hard_call_threshold=threshold)
            for k in first + np.flatnonzero(ambiguous):
                exact = _exact_alt_dosage(path, start + k, spool_dir)
                hard_calls(exact[None], out=block[k:k + 1], hard_call_threshold=threshold)
        return block

    return file_source(path, source_format="BGEN", sample_id=sample_id, variant_id=variant_id,
                       read_block=read_block, table=table, pheno=pheno, mpheno=mpheno,
                       hard_call_rule=HARD_CALL_RULE, hard_call_threshold=threshold)


def _alt_dosage(path: Path, reader: bgen.BgenReader, index: int, name: str) -> np.ndarray:
    """float32 (n,) expected count of variant ``index``'s second allele, NaN = missing."""
    try:
        variant = reader[index]
        if len(variant.alleles) != 2:
            raise InputError(f"{path}: variant {name} has {len(variant.alleles)} alleles; dask-h2 reads biallelic "
                             "variants only (drop the others first, e.g. plink2 --max-alleles 2)")
        ploidy = variant.ploidy
        if ploidy.min() != 2 or ploidy.max() != 2:
            raise InputError(f"{path}: variant {name} has samples of ploidy {int(ploidy[ploidy != 2][0])}; "
                             "dask-h2 reads diploid calls only")
        return variant.alt_dosage
    except InputError:
        raise
    except Exception as exc:  # the library's errors for a damaged variant
        raise InputError(f"{path}: variant {name}: unreadable ({exc})") from None


def _exact_alt_dosage(path: Path, index: int, spool_dir: Path) -> np.ndarray:
    """float32 (n,) dosage of variant ``index``'s second allele rounded to 16384ths exactly as plink2
    rounds it, from cbgen's float64 probabilities (``k / (2^bits − 1)``, never within float64 error
    of a tie at 16384ths since 2^bits − 1 is odd); NaN = missing."""
    import cbgen  # only for the rare variant near a step of the rule

    metafile = spool_dir / f"{path.name}.cbgen-metafile"
    with cbgen.bgen_file(str(path)) as file:
        if not metafile.exists():
            file.create_metafile(metafile, verbose=False)
        with cbgen.bgen_metafile(metafile) as index_file:
            part = index_file.read_partition(index // index_file.partition_size)
            offset = int(part.variants.offset[index - part.offset])
        genotype = file.read_genotype(offset, precision=64)
    p = genotype.probability
    first = p[:, 0] + p[:, 2] if genotype.phased else 2 * p[:, 0] + p[:, 1]
    return ((2 * DOSAGE_ONE - np.rint(first * DOSAGE_ONE)) / DOSAGE_ONE).astype(np.float32)
