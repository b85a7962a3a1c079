"""Figures people would rather look at than read: profile likelihood, eigenvalue spectrum, PC1 vs PC2.

Each ``*_figure`` function draws from plain arrays and returns a matplotlib Figure;
:func:`write_plots` fits a problem and saves them all (PNG or SVG). Figures are made
without pyplot, so no display and no global state are involved.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from dask_h2.greml.univariate import fit_rotated, profile_loglik
from dask_h2.results import TraitFit
from dask_h2.greml.interval import LEVEL, chi2_threshold
from dask_h2.greml.likelihood import Method, null_tolerance, reduce_problem
from dask_h2.io.outputs import atomic_outputs
from dask_h2.greml.problem import FitProblem

PROFILE_POINTS = 400
FORMATS = ("png", "svg")


def profile_figure(h2: np.ndarray, loglik: np.ndarray, *, fit: TraitFit) -> Figure:
    """log L − log L(ĥ²) over ``h2`` (g,) with the estimate, the 95% interval and its threshold marked."""
    figure = Figure(figsize=(6.4, 4.2), layout="constrained")
    axes = figure.subplots()
    relative = loglik - fit.logL
    axes.plot(h2, relative, color="C0", label="profile log-likelihood")
    axes.axhline(-0.5 * chi2_threshold(), color="grey", linestyle=":",
                 label=f"−χ²₁({LEVEL:.2f})/2 = {-0.5 * chi2_threshold():.3f}")
    axes.axvspan(fit.h2_ci_low, fit.h2_ci_high, color="C0", alpha=0.15,
                 label=f"{LEVEL:.0%} CI [{fit.h2_ci_low:.3f}, {fit.h2_ci_high:.3f}]")
    axes.axvline(fit.h2, color="C3", label=f"ĥ² = {fit.h2:.4f} (SE {fit.h2_se:.4f})")
    axes.plot([fit.h2], [0.0], "o", color="C3", clip_on=False, zorder=3)  # visible on a boundary too
    shown = relative[np.isfinite(relative)]
    axes.set_ylim(max(shown.min(), -6.0 * chi2_threshold()), 0.5)
    axes.set_xlim(h2[0], h2[-1])
    axes.set_xlabel("h²")
    axes.set_ylabel("log L − log L(ĥ²)")
    axes.set_title(f"{fit.name}: {fit.method}, n = {fit.n}, LRT = {fit.lrt:.2f}, P = {fit.pval:.3g}")
    axes.legend(loc="lower center", fontsize="small")
    return figure


def spectrum_figure(eigenvalues: np.ndarray, pcs: int) -> Figure:
    """Eigenvalues (n,) of K, descending, against their rank on log axes; the ``pcs`` used as fixed effects
    highlighted."""
    figure = Figure(figsize=(6.4, 4.2), layout="constrained")
    axes = figure.subplots()
    rank = np.arange(1, eigenvalues.size + 1)
    positive = eigenvalues > null_tolerance(eigenvalues)
    axes.loglog(rank[positive], eigenvalues[positive], ".", color="C0", markersize=3, label="eigenvalue")
    if pcs:
        axes.loglog(
            rank[:pcs], eigenvalues[:pcs], "o", color="C3", markersize=5, label=f"top {pcs} (PCs as fixed effects)"
        )
    axes.axhline(eigenvalues.mean(), color="grey", linestyle=":",
                 label=f"mean eigenvalue = trace K / n = {eigenvalues.mean():.3f}")
    axes.set_xlabel("rank")
    axes.set_ylabel("eigenvalue of K")
    zeros = eigenvalues.size - int(positive.sum())
    axes.set_title(f"GRM spectrum: {eigenvalues.size} samples"
                   + (f", {zeros} zero eigenvalue{'s' * (zeros > 1)} not shown" if zeros else ""))
    axes.legend(fontsize="small")
    return figure


def pcs_figure(eigenvalues: np.ndarray, eigenvectors: np.ndarray) -> Figure:
    """PC1 against PC2: the top two eigenvectors (n, ≥ 2) of K, one point per sample."""
    figure = Figure(figsize=(5.2, 5.0), layout="constrained")
    axes = figure.subplots()
    axes.scatter(eigenvectors[:, 0], eigenvectors[:, 1], s=6, alpha=0.6, color="C0", linewidths=0)
    share = eigenvalues[:2] / eigenvalues.sum()
    axes.set_xlabel(f"PC1 ({share[0]:.1%} of trace K)")
    axes.set_ylabel(f"PC2 ({share[1]:.1%} of trace K)")
    axes.set_title(f"Top principal components of K, {eigenvectors.shape[0]} samples")
    return figure


def write_plots(problem: FitProblem, prefix: str | Path, *, fmt: str = "png", method: Method = "REML", pcs: int = 10,
                constrain: bool = True) -> list[Path]:
    """Save ``PREFIX.profile.<trait>.FMT`` per trait, ``PREFIX.eigenvalues.FMT`` and ``PREFIX.pcs.FMT``."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    figures = {"eigenvalues": spectrum_figure(problem.eigen.values, pcs),
               "pcs": pcs_figure(problem.eigen.values, problem.eigen.vectors)}
    for trait in problem.rotated(pcs=pcs):
        fit = fit_rotated(trait.name, s=trait.s, y=trait.y, X=trait.X, method=method, constrain=constrain)
        loglik = profile_loglik(reduce_problem(trait.s, trait.y, X=trait.X, method=method))
        low = min(0.0, fit.h2_ci_low, fit.h2)
        grid = np.union1d(np.linspace(low, 1.0, PROFILE_POINTS), [fit.h2, fit.h2_ci_low, fit.h2_ci_high])
        figures[f"profile.{trait.name}"] = profile_figure(grid, np.array([loglik(h) for h in grid]), fit=fit)
    written = []
    for name, figure in figures.items():
        path = prefix.with_name(f"{prefix.name}.{name}.{fmt}")
        with atomic_outputs(path) as (partial,):
            figure.savefig(partial, dpi=120, format=fmt)
        written.append(path)
    return written
