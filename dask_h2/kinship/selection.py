"""Which samples and markers an analysis uses, and how markers are scaled: sample and marker ID lists,
marker QC and the standardization; the same for K on the exact path and for the moments path."""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from dask_h2.checks import PARAMETERS, check, check_unambiguous, fraction, number_in
from dask_h2.errors import NAMED, InputError, ParameterError

Scale = Literal["hwe", "empirical"]
SCALES: tuple[str, ...] = ("hwe", "empirical")


@dataclass(frozen=True, kw_only=True)
class MarkerQC:
    """Marker filters: minor allele frequency ≥ ``maf`` and fraction of missing calls ≤ ``max_missing``
    (both over the samples analysed)."""

    maf: float = 0.0
    max_missing: float = 1.0


@dataclass(frozen=True, kw_only=True)
class Selection:
    """The samples and markers of an analysis beyond the store: ``scale`` of the standardization
    (``hwe`` or ``empirical``), marker ``qc``, and ID lists: ``keep``/``remove`` are PLINK-style sample
    files (FID IID, or one IID per line), ``extract``/``exclude`` list one marker ID per line;
    ``king_cutoff``: leave out relatives, the samples plink2's ``--king-cutoff`` removes among those kept
    (KING-robust kinship above it, :mod:`dask_h2.kinship.king`).

    Examples
    --------
    >>> Selection(scale="empirical", qc=MarkerQC(maf=0.01)).qc.maf
    0.01
    """

    scale: Scale = "hwe"
    qc: MarkerQC = field(default_factory=MarkerQC)
    keep: Path | None = None
    remove: Path | None = None
    extract: Path | None = None
    exclude: Path | None = None
    king_cutoff: float | None = None

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ParameterError(f"{{scale}}: expected one of {', '.join(SCALES)}", scale=self.scale)
        check(self.qc.maf, number_in(0.0, 0.5), parameter="maf")
        check(self.qc.max_missing, fraction, parameter="max_missing")
        if self.king_cutoff is not None:
            cutoff = check(self.king_cutoff, PARAMETERS["king_cutoff"], parameter="king_cutoff")
            object.__setattr__(self, "king_cutoff", cutoff)

    def describe(self, marker_counts: dict[str, int]) -> dict:
        """What the report says of the markers: their counts by status and the QC that made them."""
        return {"marker_counts": marker_counts, "maf": self.qc.maf, "max_missing": self.qc.max_missing}


def _read_ids(path: Path, column: int) -> set[str]:
    """IDs from one column of a whitespace-separated file (the last one on shorter lines)."""
    if not Path(path).is_file():
        raise InputError(f"{path}: no such file")
    return {
        fields[min(column, len(fields) - 1)]
        for fields in (line.split() for line in Path(path).read_text().splitlines())
        if fields
    }


def _mask(ids: np.ndarray, include: Path | None, drop: Path | None, column: int, what: str) -> np.ndarray:
    mask = np.ones(len(ids), dtype=bool)
    for path, keep in ((include, True), (drop, False)):
        if path is None:
            continue
        listed = _read_ids(path, column)
        if what == "markers":
            check_unambiguous(sorted(listed), [str(i) for i in ids], where=str(path))
        hits = np.array([i in listed for i in ids], dtype=bool)
        if not hits.any():
            raise InputError(f"{path}: none of its {len(listed)} IDs match the {what} of the store")
        mask &= hits if keep else ~hits
    if not mask.any():
        raise ParameterError(
            f"no {what} left after {{keep}}/{{remove}}/{{extract}}/{{exclude}}",
            keep=NAMED,
            remove=NAMED,
            extract=NAMED,
            exclude=NAMED,
        )
    return mask


def sample_mask(sample_id: np.ndarray, selection: Selection) -> np.ndarray:
    """bool (n,): the samples analysed (IIDs are the second column of a FID IID file)."""
    return _mask(sample_id, selection.keep, selection.remove, 1, "samples")


def variant_mask(variant_id: np.ndarray, selection: Selection) -> np.ndarray:
    """bool (M,): the markers analysed, before QC."""
    return _mask(variant_id, selection.extract, selection.exclude, 0, "markers")


def cache_key(selection: Selection, samples: np.ndarray, *, variants: np.ndarray) -> dict:
    """What a cached product (a GRM, the PCs) must match to be reused (the ID lists by the masks they give)."""
    return {"scale": selection.scale, **asdict(selection.qc), "samples_sha1": mask_digest(samples),
            "variants_sha1": mask_digest(variants)}


def mask_digest(mask: np.ndarray) -> str:
    """SHA-1 of a bool mask (what a cached product's key records of the samples or markers it used)."""
    return hashlib.sha1(np.packbits(mask).tobytes()).hexdigest()
