"""Dosages (expected allele counts) to the store's 0/1/2 calls by PLINK 2's hard-call rule.

plink2 keeps a hard call where the dosage is close enough to 0, 1 or 2
(``--hard-call-threshold T``, default 0.1) and a missing call elsewhere, in exact
integer arithmetic (plink2_import.cc, plink2_data.cc): with ``D = round(16384 · dosage)``
(0 … 32768), ``t = int(T · (1 + 2⁻⁴⁴) · 16384)`` and ``r = D mod 16384``, the call is
``(D + 8192) // 16384`` if ``min(r, 16384 − r) <= t``, else missing. As a function of
``y = 16384 · dosage`` the call steps at ``t + ½``, ``16384 − t − ½``, ``16384 + t + ½``
and ``32768 − t − ½``.

:func:`hard_calls` applies the rule to float32 dosages. A dosage read exactly as an
integer count of 1/16384 (a .pgen's) is called exactly. A float32 dosage of a BGEN
reader carries a rounding error of at most 2⁻⁷ in ``y`` (16384ths); a sample within
:data:`AMBIGUOUS` of a step is reported so that its variant can be read again exactly.
"""
from __future__ import annotations

import numpy as np

from dask_h2.kinship.standardize import compiled

HARD_CALL_RULE = "plink2 --hard-call-threshold"  # recorded in the store beside the threshold
DEFAULT_HARD_CALL_THRESHOLD = 0.1  # plink2's default
DOSAGE_ONE = 16384  # plink2's kDosageMid: 16384ths of an allele copy
AMBIGUOUS = 1.0 / 64  # in 16384ths: twice the float32 error bound of a BGEN reader's dosage


def threshold_units(hard_call_threshold: float) -> int:
    """plink2's integer threshold ``t`` (16384ths) of ``--hard-call-threshold``, as plink2.cc computes it.

    Examples
    --------
    >>> threshold_units(0.1), threshold_units(0.2)
    (1638, 3276)
    """
    return int(hard_call_threshold * ((1 + 2.0 ** -44) * DOSAGE_ONE))


def hard_calls(dosage: np.ndarray, *, out: np.ndarray, hard_call_threshold: float) -> np.ndarray:
    """Write the calls of ``dosage`` into ``out`` and flag the rows that need an exact reading.

    Parameters
    ----------
    dosage : ndarray, float32 (m, n)
        Expected counts of the counted allele (0 … 2) of m markers in n samples; NaN or
        negative (a .pgen's −9) = missing.
    out : ndarray, int8 (m, n)
        Receives 0, 1, 2, or −1 = missing.
    hard_call_threshold : float
        plink2's ``--hard-call-threshold`` T in [0, 0.5).

    Returns
    -------
    ndarray, bool (m,)
        Rows with a sample within :data:`AMBIGUOUS` of a step of the rule: their calls
        in ``out`` may differ from plink2's if ``dosage`` was rounded.

    Examples
    --------
    >>> calls = np.empty((1, 5), np.int8)
    >>> hard_calls(np.array([[0.05, 0.5, 0.95, 1.9, np.nan]], np.float32), out=calls, hard_call_threshold=0.1)
    array([False])
    >>> calls
    array([[ 0, -1,  1,  2, -1]], dtype=int8)
    """
    ambiguous = np.empty(dosage.shape[0], dtype=np.bool_)
    _hard_calls(np.ascontiguousarray(dosage, dtype=np.float32), out, threshold_units(hard_call_threshold),
                AMBIGUOUS, ambiguous)
    return ambiguous


def _hard_calls_kernel(dosage, out, t, band, ambiguous):
    m, n = dosage.shape
    steps = (t + 0.5, DOSAGE_ONE - t - 0.5, DOSAGE_ONE + t + 0.5, 2 * DOSAGE_ONE - t - 0.5)
    for j in range(m):
        near = False
        for i in range(n):
            y = np.float64(dosage[j, i]) * DOSAGE_ONE
            call = -1
            if y < -1.0:  # missing; NaN fails every comparison below and stays missing too
                call = -1
            elif y < steps[0]:
                call = 0
            elif steps[1] < y < steps[2]:
                call = 1
            elif y > steps[3]:
                call = 2
            near |= (abs(y - steps[0]) <= band) | (abs(y - steps[1]) <= band) | \
                (abs(y - steps[2]) <= band) | (abs(y - steps[3]) <= band)
            out[j, i] = call
        ambiguous[j] = near


_hard_calls = compiled(_hard_calls_kernel)
