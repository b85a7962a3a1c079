"""PLINK 2 binary genotypes (.pgen with .pvar or .pvar.zst, and .psam) as a genotype source.

Read by ``pgenlib``, the PLINK 2 team's reader: the dosage is the count of the ALT allele,
which ``plink2 --pfile IN --make-bed`` writes as A1, so a .pgen gives the store that its
.bed would. Multiallelic variants are refused: drop them first (``plink2 --max-alleles 2``) or split them.

pgenlib releases the GIL while it decodes, so a block of markers is read as a few
ranges on threads side by side, each with a reader of its own (a reader is not shared
between threads).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pgenlib

from dask_h2.errors import InputError
from dask_h2.io.hard_calls import HARD_CALL_RULE, hard_calls
from dask_h2.io.phenotypes import read_phenotypes
from dask_h2.io.sources import GenotypeSource, marker_blocks

PGEN_MISSING = -9  # pgenlib's missing call and dosage
DOSAGE_PIECE = 64  # markers whose float32 dosages are held at a time per thread


def pgen_files(path: Path) -> tuple[Path, Path, Path]:
    """(.pgen, .pvar or .pvar.zst, .psam) of ``IN.pgen``; :class:`InputError` naming a missing one."""
    pvar = next((p for p in (path.with_suffix(".pvar"), path.with_suffix(".pvar.zst")) if p.is_file()), None)
    if pvar is None:
        raise InputError(f"{path.with_suffix('.pvar')}: no such file (nor .pvar.zst; a .pgen needs its .pvar, .psam)")
    psam = path.with_suffix(".psam")
    if not psam.is_file():
        raise InputError(f"{psam}: no such file (a .pgen needs its .pvar and .psam)")
    return path, pvar, psam


def read_psam_ids(path: Path) -> np.ndarray:
    """The IIDs of a .psam, in its order: the ``IID`` column under a ``#FID IID …`` or ``#IID …``
    header, or the second column of a headerless (.fam-like) file."""
    column, ids = None, []
    with open(path) as lines:
        for number, line in enumerate(lines, 1):
            fields = line.split()
            if not fields or (column is not None and fields[0].startswith("#")):
                continue
            if column is None:
                header = [fields[0].lstrip("#"), *fields[1:]] if fields[0].startswith("#") else None
                if header is not None and "IID" not in header:
                    raise InputError(f"{path}: line {number}: header without an IID column")
                column = header.index("IID") if header else 1
                if header:
                    continue
            if len(fields) <= column:
                raise InputError(f"{path}: line {number}: {len(fields)} column(s), no IID")
            ids.append(fields[column])
    return np.array(ids, dtype=object)


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
                hard_call_threshold: float | None = None, threads: int | None = None) -> GenotypeSource:
    """ALT allele counts of a .pgen, with phenotypes from ``pheno`` (FID IID y1 y2 …), else none.

    ``hard_call_threshold`` None keeps the hard calls stored in the .pgen (what
    ``plink2 --pfile IN --make-bed`` writes); a threshold T calls the stored dosages
    again by plink2's rule (``plink2 --pfile IN --hard-call-threshold T --make-bed``).
    Blocks are read on ``threads`` threads (default: one per core).
    """
    pgen, pvar, psam = pgen_files(Path(path))
    try:
        with pgenlib.PgenReader(bytes(pgen)) as reader:
            n_samples, n_variants = reader.get_raw_sample_ct(), reader.get_variant_ct()
    except RuntimeError as exc:
        raise InputError(f"{pgen}: unreadable .pgen ({str(exc).strip()})") from None
    sample_id = read_psam_ids(psam)
    if len(sample_id) != n_samples:
        raise InputError(f"{psam}: {len(sample_id)} samples, but {pgen.name} holds {n_samples}")
    variant_id = _variant_ids(pvar, n_variants)
    table = (read_phenotypes(pheno, sample_id, mpheno=mpheno) if pheno is not None
             else (np.empty((n_samples, 0)), np.empty(0, dtype=object)))
    workers = threads or os.cpu_count() or 1

    def read_range(start: int, stop: int, out: np.ndarray) -> None:
        try:
            with pgenlib.PgenReader(bytes(pgen)) as reader:
                if hard_call_threshold is None:
                    reader.read_range(start, stop, out, allele_idx=1)
                    np.clip(out, -1, 2, out=out)  # PGEN_MISSING (−9) → −1 (clip: 15× faster than a mask here)
                    return
                dosage = np.empty((min(DOSAGE_PIECE, stop - start), n_samples), dtype=np.float32)
                for first, last in marker_blocks(stop - start, DOSAGE_PIECE):
                    reader.read_dosages_range(start + first, start + last, dosage[:last - first], allele_idx=1)
                    hard_calls(dosage[:last - first], out=out[first:last], hard_call_threshold=hard_call_threshold)
        except RuntimeError as exc:
            raise InputError(f"{pgen}: variants {start + 1}–{stop}: unreadable ({str(exc).strip()})") from None

    pool = ThreadPoolExecutor(workers, thread_name_prefix="dask-h2-pgen")  # its threads end with the source

    def read_block(start: int, stop: int) -> np.ndarray:
        block = np.empty((stop - start, n_samples), dtype=np.int8)
        step = -(-(stop - start) // workers)
        ranges = [(first, min(first + step, stop)) for first in range(start, stop, step)]
        for done in [pool.submit(read_range, first, last, block[first - start:last - start]) for first, last in ranges]:
            done.result()
        return block

    attrs = {
        "source": str(pgen.resolve()),
        "source_format": "PLINK 2 pgen",
        "phenotype_file": str(pheno) if pheno else None,
        "mpheno": mpheno,
        "hard_call_rule": HARD_CALL_RULE if hard_call_threshold is not None else "the .pgen's stored hard calls",
        "hard_call_threshold": hard_call_threshold,
    }
    return GenotypeSource(
        sample_id=sample_id, variant_id=variant_id, read_block=read_block, phenotypes=lambda: table, attrs=attrs
    )
