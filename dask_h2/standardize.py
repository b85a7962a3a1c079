"""Per-chunk marker statistics and standardization (pure numpy, one chunk of markers).

A chunk is int8 dosages (m markers, n samples) with −1 = missing. Every chunk holds
all samples, so each marker's frequency and scale come from its own chunk alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Scale = Literal["hwe", "empirical"]
SCALES: tuple[str, ...] = ("hwe", "empirical")


def marker_moments(dosage: np.ndarray) -> np.ndarray:
    """Counts (m, 3) int64 per marker: observed calls, Σg and Σg² over observed calls.

    Only boolean temporaries of the chunk's shape are made (no wide integer copies).
    """
    observed = np.count_nonzero(dosage >= 0, axis=1)
    ones = np.count_nonzero(dosage == 1, axis=1)
    twos = np.count_nonzero(dosage == 2, axis=1)
    return np.stack([observed, ones + 2 * twos, ones + 4 * twos], axis=1).astype(np.int64)


@dataclass(frozen=True)
class MarkerQC:
    """Marker filters at GRM time: minor allele frequency ≥ ``maf`` and fraction of
    missing calls ≤ ``max_missing`` (both over the samples in the GRM)."""

    maf: float = 0.0
    max_missing: float = 1.0


# why a marker is left out of K, in order of precedence
USED, EXCLUDED, NO_VARIATION, MISSINGNESS, MINOR_ALLELE_FREQUENCY = range(5)
STATUS_NAMES = ("used", "excluded", "no_variation", "max_missing", "maf")


def centre_and_scale(moments: np.ndarray, n_samples: int, scale: Scale, qc: MarkerQC = MarkerQC(),
                     selected: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre 2p (m,), inverse scale (m,) and status (m,) int8 from :func:`marker_moments`.

    ``hwe`` scales by sqrt(2p(1 − p)) (GCTA, the seed's eq. 2); ``empirical`` by the
    sample standard deviation of observed calls (FaST-LMM, Hail). A marker not
    ``selected``, without variation among its observed calls (monomorphic or all
    missing), or failing ``qc`` gets inverse scale 0, so it drops out of K and of the
    marker count M; its status says why (``STATUS_NAMES``).
    """
    n_obs, total, total_sq = (moments[:, i].astype(np.float64) for i in range(3))
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; expected one of {SCALES}")
    n_safe = np.maximum(n_obs, 1.0)
    centre = total / n_safe
    sample_variance = total_sq / n_safe - centre**2
    p = centre / 2.0
    variance = 2.0 * p * (1.0 - p) if scale == "hwe" else sample_variance
    status = np.full(centre.shape, USED, dtype=np.int8)
    status[np.minimum(p, 1.0 - p) < qc.maf] = MINOR_ALLELE_FREQUENCY
    status[1.0 - n_obs / n_samples > qc.max_missing] = MISSINGNESS
    status[(n_obs == 0) | (sample_variance <= 1e-12) | (variance <= 1e-12)] = NO_VARIATION
    if selected is not None:
        status[~selected] = EXCLUDED
    usable = status == USED
    inverse_scale = np.zeros_like(centre)
    inverse_scale[usable] = 1.0 / np.sqrt(variance[usable])
    return centre, inverse_scale, status


def standardize(dosage: np.ndarray, centre: np.ndarray, inverse_scale: np.ndarray) -> np.ndarray:
    """Standardized float32 genotypes (m, n); missing calls become 0 (mean imputation)."""
    z = dosage.astype(np.float32)
    z -= centre.astype(np.float32)[:, None]
    z *= inverse_scale.astype(np.float32)[:, None]
    z[dosage < 0] = 0.0
    return z
