"""PLINK 1 binary genotypes (.bed/.bim/.fam) as a genotype source."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from bed_reader import open_bed

from dask_h2.errors import InputError
from dask_h2.id_table import align_to_samples

from .source import GenotypeSource


def bed_source(path: str | Path, pheno: str | Path | None = None) -> GenotypeSource:
    """Dosages counting allele 1 of the .bim (PLINK's A1), with phenotypes from ``pheno``
    (FID IID y1 y2 …, −9/NA missing) or else from the .fam's sixth column."""
    path = Path(path)
    for suffix in (".bed", ".bim", ".fam"):
        if not path.with_suffix(suffix).is_file():
            raise InputError(f"{path.with_suffix(suffix)}: no such file (a .bed needs its .bim and .fam)")
    try:
        bed = open_bed(path)
        sample_id, variant_id = np.asarray(bed.iid, dtype=object), np.asarray(bed.sid, dtype=object)
    except Exception as exc:  # bed-reader raises its own types for malformed files
        raise InputError(f"{path}: unreadable PLINK file set ({exc})") from None

    def read_block(start: int, stop: int) -> np.ndarray:
        try:
            values = bed.read(index=np.s_[:, start:stop], dtype="int8", num_threads=1)
        except Exception as exc:
            raise InputError(f"{path}: unreadable genotypes for markers {start}–{stop} ({exc})") from None
        values[values < 0] = -1
        return np.ascontiguousarray(values.T)

    def phenotypes() -> tuple[np.ndarray, np.ndarray]:
        if pheno is not None:
            traits, names = align_to_samples(pheno, sample_id)
            return traits, np.array(names, dtype=object)
        fam = np.asarray(bed.pheno, dtype=object)
        traits = np.array([np.nan if v in ("-9", "0", "NA") else float(v) for v in fam])
        return traits[:, None], np.array(["pheno"], dtype=object)

    attrs = {"source": str(path.resolve()), "source_format": "PLINK bed", "phenotype_file": str(pheno) if pheno else None}
    return GenotypeSource(sample_id, variant_id, read_block, phenotypes, attrs)
