"""PLINK 2 binary genotypes (.pgen with .pvar or .pvar.zst, and .psam) as a genotype source.

Read by ``pgenlib``, the PLINK 2 team's reader: the dosage is the count of the ALT allele,
which ``plink2 --pfile IN --make-bed`` writes as A1, so a .pgen gives the store that its
.bed would. Multiallelic variants are refused: drop them first (``plink2 --max-alleles 2``) or split them.

pgenlib releases the GIL while it decodes, so the store's writer reads its chunks on threads
side by side, each thread with a reader of its own (a reader is not shared between threads).
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import pgenlib

from dask_h2.errors import InputError
from dask_h2.io.phenotypes import plink_coding, read_phenotypes
from dask_h2.io.tables import is_missing
from dask_h2.io.sources import GenotypeSource, file_source, marker_blocks

PSAM_NOT_TRAITS = {"FID", "IID", "SID", "PAT", "MAT", "SEX"}  # the .psam's columns that are not phenotypes
log = logging.getLogger("dask_h2")
DOSAGE_PIECE = 64  # markers whose float32 dosages are held at a time per thread
STORED_CALLS = "the .pgen's stored hard calls"  # the rule recorded when no threshold is given (as plink2 --pfile)


def pgen_files(path: Path) -> tuple[Path, Path, Path]:
    """(.pgen, .pvar or .pvar.zst, .psam) of ``IN.pgen``; :class:`InputError` naming a missing one."""
    pvar = next((p for p in (path.with_suffix(".pvar"), path.with_suffix(".pvar.zst")) if p.is_file()), None)
    if pvar is None:
        raise InputError(f"{path.with_suffix('.pvar')}: no such file (nor .pvar.zst; a .pgen needs its .pvar, .psam)")
    psam = path.with_suffix(".psam")
    if not psam.is_file():
        raise InputError(f"{psam}: no such file (a .pgen needs its .pvar and .psam)")
    return path, pvar, psam


def read_psam(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(IIDs (n,), traits (n, k) float64 with NaN = missing, trait names (k,)) of a .psam, in its order.

    Under a ``#FID IID …`` or ``#IID …`` header the IIDs are the ``IID`` column and the traits
    every column but FID, IID, SID, PAT, MAT and SEX; a headerless file is laid out as a .fam
    (IID second, the trait ``pheno`` sixth). Missing values and case-control coding are PLINK's
    (:func:`dask_h2.io.tables.is_missing`, :func:`dask_h2.io.phenotypes.plink_coding`); a column
    that is not numeric (plink2's categorical phenotypes) is not a trait.
    """
    rows = [(number, line.split()) for number, line in enumerate(path.read_text().splitlines(), 1)]
    rows = [(number, fields) for number, fields in rows if fields and not fields[0].startswith("##")]
    if rows and rows[0][1][0].startswith("#"):
        header = [rows[0][1][0].lstrip("#"), *rows[0][1][1:]]
        rows = rows[1:]
    else:
        header = ["FID", "IID", "PAT", "MAT", "SEX", "pheno"]
    if "IID" not in header:
        raise InputError(f"{path}: header without an IID column")
    uneven = next(((number, len(fields)) for number, fields in rows if len(fields) != len(header)), None)
    if uneven is not None:
        raise InputError(f"{path}: line {uneven[0]}: {uneven[1]} columns, expected {len(header)}")
    ids = np.array([fields[header.index("IID")] for _, fields in rows], dtype=object)
    traits, names = [], []
    for column, name in enumerate(header):
        if name in PSAM_NOT_TRAITS:
            continue
        cells = [fields[column] for _, fields in rows]
        try:
            traits.append([np.nan if is_missing(cell) else float(cell) for cell in cells])
        except ValueError:  # categorical
            log.info(f"{path}: column {name} is not numeric, so not read as a trait")
            continue
        names.append(name)
    values = np.array(traits, dtype=np.float64).T if traits else np.empty((len(ids), 0))
    return ids, plink_coding(values), np.array(names, dtype=object)


def _variant_ids(pvar: Path, n_variants: int) -> np.ndarray:
    """The .pvar's IDs, with ``chrom:pos`` where an ID is missing ('.'); refuses multiallelic variants."""
    try:
        table = pgenlib.PvarReader(bytes(pvar))
    except RuntimeError as exc:
        raise InputError(f"{pvar}: unreadable .pvar ({exc})") from None
    try:
        if table.get_variant_ct() != n_variants:
            raise InputError(f"{pvar}: {table.get_variant_ct()} variants, but the .pgen holds {n_variants}")
        if table.get_max_allele_ct() > 2:
            multi = next(j for j in range(n_variants) if table.get_allele_ct(j) > 2)
            raise InputError(f"{pvar}: variant {table.get_variant_id(multi).decode()} has "
                             f"{table.get_allele_ct(multi)} alleles; dask-h2 reads biallelic variants only "
                             "(drop them with plink2 --max-alleles 2, or split them first: bcftools norm -m -)")
        ids = [table.get_variant_id(j).decode() for j in range(n_variants)]
        return np.array([f"{table.get_variant_chrom(j).decode()}:{table.get_variant_pos(j)}" if v == "." else v
                         for j, v in enumerate(ids)], dtype=object)
    finally:
        table.close()


def pgen_source(path: str | Path, *, pheno: str | Path | None = None, mpheno: int | None = None,
                hard_call_threshold: float | None = None) -> GenotypeSource:
    """ALT allele counts of a .pgen, with phenotypes from ``pheno`` (FID IID y1 y2 …; ``mpheno`` picks
    one, 1-based), else from the .psam's phenotype columns (:func:`read_psam`).

    ``hard_call_threshold`` None keeps the hard calls stored in the .pgen (what
    ``plink2 --pfile IN --make-bed`` writes); a threshold T calls the stored dosages
    again by plink2's rule (``plink2 --pfile IN --hard-call-threshold T --make-bed``).
    Blocks may be read on several threads at once (pgenlib decodes without the GIL).
    """
    pgen, pvar, psam = pgen_files(Path(path))
    try:
        with pgenlib.PgenReader(bytes(pgen)) as reader:
            n_samples, n_variants = reader.get_raw_sample_ct(), reader.get_variant_ct()
    except RuntimeError as exc:
        raise InputError(f"{pgen}: unreadable .pgen ({str(exc).strip()})") from None
    sample_id, *psam_traits = read_psam(psam)
    if len(sample_id) != n_samples:
        raise InputError(f"{psam}: {len(sample_id)} samples, but {pgen.name} holds {n_samples}")
    variant_id = _variant_ids(pvar, n_variants)
    table = read_phenotypes(pheno, sample_id, mpheno=mpheno) if pheno is not None else tuple(psam_traits)
    if hard_call_threshold is not None:
        from dask_h2.io.hard_calls import HARD_CALL_RULE, hard_calls  # numba's kernel, for dosages only
    readers = threading.local()  # a pgenlib reader is not shared between threads: one each, closed with it

    def read_block(start: int, stop: int) -> np.ndarray:
        block = np.empty((stop - start, n_samples), dtype=np.int8)
        try:
            if not hasattr(readers, "pgen"):
                readers.pgen = pgenlib.PgenReader(bytes(pgen))
            if hard_call_threshold is None:
                readers.pgen.read_range(start, stop, block, allele_idx=1)
                np.clip(block, -1, 2, out=block)  # pgenlib's missing (−9) → −1 (15× faster than a mask)
                return block
            dosage = np.empty((min(DOSAGE_PIECE, stop - start), n_samples), dtype=np.float32)
            for first, last in marker_blocks(stop - start, DOSAGE_PIECE):
                readers.pgen.read_dosages_range(start + first, start + last, dosage[:last - first], allele_idx=1)
                hard_calls(dosage[:last - first], out=block[first:last], hard_call_threshold=hard_call_threshold)
            return block
        except RuntimeError as exc:
            raise InputError(f"{pgen}: variants {start + 1}–{stop}: unreadable ({str(exc).strip()})") from None

    return file_source(pgen, source_format="PLINK 2 pgen", sample_id=sample_id, variant_id=variant_id,
                       read_block=read_block, table=table, pheno=pheno, mpheno=mpheno, parallel_reads=True,
                       hard_call_rule=STORED_CALLS if hard_call_threshold is None else HARD_CALL_RULE,
                       hard_call_threshold=hard_call_threshold)
