"""h² of a case-control trait on the liability scale (Lee et al. 2011, as GCTA's ``--prevalence``).

A disease is a liability-threshold trait: cases are the fraction K (the prevalence) of the
population whose normal liability exceeds t = Φ⁻¹(1 − K). An LMM fitted to the 0/1 trait
gives h² on the observed scale; with P the proportion of cases among the fitted samples,

    h²_L = h²_O · K²(1 − K)² / (z² P(1 − P)),  z = φ(t),

and its SE is the observed SE times the same factor (GCTA's ``transform_hsq_L``). Which traits
are case-control, and their coding, is :func:`dask_h2.traits.case_control_coding`'s.
"""
from __future__ import annotations

import scipy.stats


def liability_factor(case_fraction: float, prevalence: float) -> float:
    """K²(1 − K)² / (φ(Φ⁻¹(1 − K))² P(1 − P)): multiplies h² (and its SE) on the observed scale."""
    z = float(scipy.stats.norm.pdf(scipy.stats.norm.isf(prevalence)))
    return (prevalence * (1.0 - prevalence) / z**2) * (prevalence * (1.0 - prevalence)
                                                       / (case_fraction * (1.0 - case_fraction)))
