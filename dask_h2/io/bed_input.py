"""PLINK 1 binary genotypes (.bed/.bim/.fam) as a genotype source."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from bed_reader import open_bed

from dask_h2.errors import InputError
from dask_h2.io.tables import is_missing

from dask_h2.io.phenotypes import plink_coding, read_phenotypes
from dask_h2.io.sources import GenotypeSource, file_source

BED_MAGIC = b"\x6c\x1b\x01"  # PLINK 1 .bed, variant-major


def _line_count(path: Path) -> int:
    with open(path, "rb") as lines:
        return sum(block.count(b"\n") for block in iter(lambda: lines.read(1 << 20), b""))


def check_bed(path: Path) -> tuple[int, int]:
    """(samples, markers) from the .fam and .bim, checked against the .bed's header and size."""
    n_samples, n_variants = _line_count(path.with_suffix(".fam")), _line_count(path.with_suffix(".bim"))
    with open(path, "rb") as bed:
        magic = bed.read(3)
    if magic != BED_MAGIC:
        raise InputError(f"{path}: not a variant-major PLINK 1 .bed file (header {magic.hex()}, expected 6c1b01)")
    expected = len(BED_MAGIC) + -(-n_samples // 4) * n_variants
    size = path.stat().st_size
    if size != expected:
        raise InputError(f"{path}: {size} bytes, but {n_samples} samples (.fam) × {n_variants} markers (.bim) "
                         f"need {expected}")
    return n_samples, n_variants


def bed_source(path: str | Path, *, pheno: str | Path | None = None, mpheno: int | None = None) -> GenotypeSource:
    """Dosages counting allele 1 of the .bim (PLINK's A1), with phenotypes from ``pheno``
    (FID IID y1 y2 …, −9/NA missing; ``mpheno`` picks one, 1-based) or else from the .fam's sixth column."""
    path = Path(path)
    for suffix in (".bed", ".bim", ".fam"):
        if not path.with_suffix(suffix).is_file():
            raise InputError(f"{path.with_suffix(suffix)}: no such file (a .bed needs its .bim and .fam)")
    n_samples, n_variants = check_bed(path)
    try:
        bed = open_bed(path, iid_count=n_samples, sid_count=n_variants)
        sample_id, variant_id = np.asarray(bed.iid, dtype=object), np.asarray(bed.sid, dtype=object)
    except Exception as exc:  # bed-reader raises its own types for malformed files
        raise InputError(f"{path}: unreadable PLINK file set ({exc})") from None
    table = read_phenotypes(pheno, sample_id, mpheno=mpheno) if pheno is not None else _fam_phenotype(path, bed.pheno)

    def read_block(start: int, stop: int) -> np.ndarray:
        values = bed.read(index=np.s_[:, start:stop], dtype="int8", order="F")
        values[values < 0] = -1
        return np.ascontiguousarray(values.T)

    return file_source(path, source_format="PLINK bed", sample_id=sample_id, variant_id=variant_id,
                       read_block=read_block, table=table, pheno=pheno, mpheno=mpheno)


def _fam_phenotype(path: Path, column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The .fam's sixth column as one trait, with the missing values and case-control coding of a
    phenotype file (:func:`dask_h2.io.tables.is_missing`, :func:`.phenotype_file.plink_coding`)."""
    try:
        traits = np.array([np.nan if is_missing(str(v)) else float(v) for v in column])
    except ValueError as exc:
        raise InputError(f"{path.with_suffix('.fam')}: non-numeric phenotype in column 6 ({exc})") from None
    return plink_coding(traits[:, None]), np.array(["pheno"], dtype=object)
