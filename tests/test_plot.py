"""dask-h2 plot: the files it writes and what the figures show."""
from __future__ import annotations

import numpy as np
import pytest

from dask_h2.io.convert import simulate_to
from dask_h2 import api
from dask_h2.cli import main
from dask_h2.greml.univariate import profile_loglik
from dask_h2.greml.interval import chi2_threshold
from dask_h2.greml.likelihood import reduce_problem
from dask_h2.greml.plot import pcs_figure, profile_figure, spectrum_figure, write_plots
from dask_h2.io.simulate import SimulationDesign


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plot")
    return simulate_to(
        folder / "sim.zarr", SimulationDesign(n_samples=240, n_markers=1500, h2=(0.7, 0.0), seed=2), progress=False
    )


def test_write_plots_makes_every_figure(store, tmp_path):
    problem = api.load(store, progress=False)
    written = write_plots(problem, tmp_path / "p", fmt="png", pcs=4)
    assert [p.name for p in written] == [
        "p.eigenvalues.png",
        "p.pcs.png",
        "p.profile.trait1.png",
        "p.profile.trait2.png",
    ]
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_profile_figure_marks_the_estimate_and_the_interval_on_the_curve(store):
    problem = api.load(store, progress=False)
    report = problem.fit(method="REML", pcs=4)
    fit = report.traits[0]
    trait = next(problem.rotated(pcs=4))
    loglik = profile_loglik(reduce_problem(trait.s, trait.y, X=trait.X, method="REML"))
    grid = np.union1d(np.linspace(0, 1, 101), [fit.h2, fit.h2_ci_low, fit.h2_ci_high])
    figure = profile_figure(grid, np.array([loglik(h) for h in grid]), fit=fit)
    axes = figure.axes[0]
    curve = axes.lines[0]
    x, y = curve.get_xdata(), curve.get_ydata()
    for end in (fit.h2_ci_low, fit.h2_ci_high):  # an interval's end sits on the χ² threshold or on the bound above it
        at_end = y[np.flatnonzero(x == end)[0]]
        assert (
            at_end == pytest.approx(-0.5 * chi2_threshold(), abs=1e-6)
            if 0 < end < 1
            else at_end > -0.5 * chi2_threshold()
        )
    assert y[np.flatnonzero(x == fit.h2)[0]] == pytest.approx(0.0, abs=1e-12)
    assert any(list(line.get_xdata()) == [fit.h2, fit.h2] for line in axes.lines)  # the estimate's vertical line
    assert "95% CI" in " ".join(t.get_text() for t in axes.get_legend().get_texts())


def test_spectrum_and_pcs_figures_show_every_sample():
    values = np.array([5.0, 2.0, 1.0, 0.5, 0.0])
    spectrum = spectrum_figure(values, pcs=2)
    assert len(spectrum.axes[0].lines[0].get_xdata()) == 4  # the zero eigenvalue is left out and said so
    assert "1 zero eigenvalue not shown" in spectrum.axes[0].get_title()
    vectors = np.linalg.qr(np.random.default_rng(0).normal(size=(5, 5)))[0]
    scatter = pcs_figure(values, vectors).axes[0].collections[0]
    np.testing.assert_array_equal(scatter.get_offsets(), vectors[:, :2])


def test_cli_plot_svg(store, tmp_path, capsys):
    assert main(["--quiet", "plot", str(store), "--out", str(tmp_path / "q"), "--format", "svg", "--pcs", "0"]) == 0
    assert "q.profile.trait2.svg" in capsys.readouterr().out
    assert (tmp_path / "q.pcs.svg").read_text().lstrip().startswith("<?xml")
