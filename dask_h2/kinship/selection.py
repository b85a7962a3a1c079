"""Which samples and markers enter the GRM: --keep/--remove, --extract/--exclude and marker QC."""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from dask_h2.errors import InputError
from dask_h2.kinship.standardize import SCALES, MarkerQC, Scale


@dataclass(frozen=True)
class GRMSettings:
    """Everything that defines a GRM beyond the store: scaling, marker QC and ID lists.

    ``keep``/``remove`` are PLINK-style sample files (FID IID, or one IID per line);
    ``extract``/``exclude`` list one marker ID per line.
    """

    scale: Scale = "hwe"
    qc: MarkerQC = field(default_factory=MarkerQC)
    keep: Path | None = None
    remove: Path | None = None
    extract: Path | None = None
    exclude: Path | None = None

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise InputError(f"--scale {self.scale}: expected one of {', '.join(SCALES)}")
        if not 0.0 <= self.qc.maf <= 0.5:
            raise InputError(f"--maf {self.qc.maf}: must lie in [0, 0.5]")
        if not 0.0 <= self.qc.max_missing <= 1.0:
            raise InputError(f"--max-missing {self.qc.max_missing}: must lie in [0, 1]")


def _read_ids(path: Path, column: int) -> set[str]:
    """IDs from one column of a whitespace-separated file (the last one on shorter lines)."""
    if not Path(path).is_file():
        raise InputError(f"{path}: no such file")
    return {fields[min(column, len(fields) - 1)] for fields in (line.split() for line in Path(path).read_text().splitlines())
            if fields}


def _mask(ids: np.ndarray, include: Path | None, drop: Path | None, column: int, what: str) -> np.ndarray:
    mask = np.ones(len(ids), dtype=bool)
    for path, keep in ((include, True), (drop, False)):
        if path is None:
            continue
        listed = _read_ids(path, column)
        hits = np.array([i in listed for i in ids], dtype=bool)
        if not hits.any():
            raise InputError(f"{path}: none of its {len(listed)} IDs match the {what} of the store")
        mask &= hits if keep else ~hits
    if not mask.any():
        raise InputError(f"no {what} left after --keep/--remove/--extract/--exclude")
    return mask


def sample_mask(sample_id: np.ndarray, settings: GRMSettings) -> np.ndarray:
    """bool (n,): samples in the GRM (IIDs are the second column of a FID IID file)."""
    return _mask(sample_id, settings.keep, settings.remove, 1, "samples")


def variant_mask(variant_id: np.ndarray, settings: GRMSettings) -> np.ndarray:
    """bool (M,): markers allowed into the GRM before QC."""
    return _mask(variant_id, settings.extract, settings.exclude, 0, "markers")


def cache_key(settings: GRMSettings, samples: np.ndarray, variants: np.ndarray) -> dict:
    """What a cached GRM must match to be reused (the ID lists by the masks they give)."""
    return {"scale": settings.scale, **asdict(settings.qc),
            "samples_sha1": hashlib.sha1(np.packbits(samples).tobytes()).hexdigest(),
            "variants_sha1": hashlib.sha1(np.packbits(variants).tobytes()).hexdigest()}
