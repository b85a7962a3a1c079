"""MC-REML (BOLT-REML's Monte Carlo AI-REML) against the exact path's REML and a dense computation.

The exact path fits the same model (the same samples, missingness rules, fixed effects and K_k)
from K's eigendecomposition; MC-REML's estimate differs from it by Monte Carlo noise of SD about
SE/√T (T = 100 simulated traits: 0.1 SE), so each estimate must lie within 0.35 exact SE of it
(3.5 SD) and its SE within 5 % of the exact SE: at 500 × 2,000 in the fast suite, at 1,000 × 5,000
(1 and 3 components) in the slow one. The PCs of MC-REML are the moments path's
(a randomized sketch): the exact fit takes them, read from the store, as covariates.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import zarr

from dask_h2 import api
from dask_h2.cli import main
from dask_h2.errors import ParameterError
from dask_h2.io.convert import simulate_to
from dask_h2.io.simulate import SimulationDesign
from dask_h2.kinship.partition import parse_partition
from dask_h2.kinship.pcs import RHE_GROUP
from dask_h2.kinship.selection import Selection
from dask_h2.kinship.grm import marker_chunks
from dask_h2.mcreml.passes import hold_genotypes, product_pass
from dask_h2.planning import ComputePlan
from dask_h2.store import write_traits

SMALL, LARGE = (500, 2000), (1000, 5000)  # samples × markers: the fast checks, the slow ones
PCS = 2
WARM = api.MomentsSettings(n_blocks=20)  # the start's jackknife SEs are not used: few blocks, fewer tasks
AGREEMENT = 0.35  # exact SEs: 3.5 SD of the Monte Carlo deviation at T = 100
SE_RATIO = 0.05


def simulated(folder: Path, n: int, m: int) -> tuple[Path, Path]:
    """A store of two traits (the second missing in a tenth of the samples) and a covariate file with one NA."""
    path = folder / "sim.zarr"
    simulate_to(path, SimulationDesign(n_samples=n, n_markers=m, h2=(0.6, 0.3), seed=21), progress=False)
    root = zarr.open_group(path, mode="r+")
    traits = root["traits"][:]
    traits[np.random.default_rng(4).choice(n, n // 10, replace=False), 1] = np.nan
    write_traits(root, traits, trait_name=np.array(["full", "gappy"], dtype=object))
    covariate = folder / "age.txt"
    values = np.random.default_rng(6).normal(50, 10, n)
    values[7] = np.nan  # one sample without the covariate: left out of every trait's fit
    covariate.write_text("".join(f"ind{i + 1} ind{i + 1} {'NA' if np.isnan(v) else v}\n" for i, v in enumerate(values)))
    return path, covariate


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, Path]:
    return simulated(tmp_path_factory.mktemp("mcreml_small"), *SMALL)


@pytest.fixture(scope="module")
def large(tmp_path_factory) -> tuple[Path, Path]:
    return simulated(tmp_path_factory.mktemp("mcreml_large"), *LARGE)


def exact_with_same_pcs(store: Path, qcovar: Path, folder: Path, **options) -> api.FitReport:
    """The exact path's REML with MC-REML's fixed effects: the covariate and the sketch PCs as covariates."""
    pcs = zarr.open_group(store, mode="r")[RHE_GROUP]["pcs"][:]
    rows = [line.split() for line in qcovar.read_text().splitlines()]
    path = folder / "age_pcs.txt"
    path.write_text("".join(" ".join([*row, *map(repr, pc)]) + "\n" for row, pc in zip(rows, pcs.tolist())))
    return api.fit(store, method="REML", pcs=0, qcovar=path, progress=False, **options)


def assert_agrees(mc: api.FitReport, exact: api.FitReport) -> None:
    for fit, reference in zip(mc.traits, exact.traits, strict=True):
        assert fit.name == reference.name and fit.n == reference.n and fit.converged
        pairs = [(fit.h2, fit.h2_se, reference.h2, reference.h2_se), (fit.vp, fit.vp_se, reference.vp, reference.vp_se)]
        mine = fit.components if len(fit.components) > 1 else []
        pairs += [(c.h2, c.h2_se, r.h2, r.h2_se) for c, r in zip(mine, reference.components, strict=True)]
        for value, se, exact_value, exact_se in pairs:
            assert abs(value - exact_value) < AGREEMENT * exact_se, (fit.name, value, exact_value, exact_se)
            assert abs(se / exact_se - 1) < SE_RATIO, (fit.name, se, exact_se)


@pytest.mark.parametrize("size", [
    pytest.param("small"), pytest.param("large", marks=pytest.mark.slow)])
def test_one_component_agrees_with_exact_reml(size, request, tmp_path, caplog):
    store, qcovar = request.getfixturevalue(size)
    n = SMALL[0] if size == "small" else LARGE[0]
    with caplog.at_level(logging.INFO, logger="dask_h2"):
        mc = api.fit(store, method="MC-REML", pcs=PCS, qcovar=qcovar, moments=WARM, progress=False)
    assert "MC-REML full: iteration 1, h2 = " in caplog.text  # progress per REML iteration
    exact = exact_with_same_pcs(store, qcovar, tmp_path)
    assert [t.n for t in mc.traits] == [n - 1, n - 1 - n // 10]  # the missingness rules of the other paths
    assert_agrees(mc, exact)
    assert mc.method == "MC-REML" and mc.extra["mc_samples"] == 100 and mc.extra["seed"] == 1
    assert mc.extra["fixed_effects"] == ["intercept", "PC1", "PC2", "qcovar1"]
    assert sum(mc.extra["cg_iterations"]["full"]) < mc.extra["passes_over_genotypes"]


@pytest.mark.slow
def test_three_components_agree_with_exact_reml(large, tmp_path):
    store, qcovar = large
    partition = "maf:0,0.15,0.3,0.5"
    mc = api.fit(store, method="MC-REML", pcs=PCS, qcovar=qcovar, partition=partition, moments=WARM,
                 progress=False)
    exact = exact_with_same_pcs(store, qcovar, tmp_path, components=True, partition=partition)
    assert len(mc.traits[0].components) == 3
    assert_agrees(mc, exact)


def test_products_match_a_dense_computation(small):
    """One pass: ‖W_kᵀx‖² and W_k(weights ∘ W_kᵀX) against numpy on the standardized genotypes."""
    store, _ = small
    n, m = SMALL
    root = zarr.open_group(store, mode="r")
    g = root["call_dosage"][:].astype(np.float64)
    observed = g >= 0
    p = np.where(observed, g, 0).sum(1) / observed.sum(1) / 2
    w = np.where(observed, g - 2 * p[:, None], 0.0) / np.sqrt(2 * p * (1 - p))[:, None]
    partition = parse_partition("maf:0,0.2,0.5", np.arange(m).astype(str))
    maf = np.minimum(p, 1 - p)
    component = (maf >= 0.2).astype(int)
    plan = ComputePlan(chunk_markers=1024, split_every=2, dask_threads=1, blas_threads=1)
    dosage = marker_chunks(da.from_zarr(root["call_dosage"]), 1024, selected=None)[0]
    held = hold_genotypes(dosage, selected=np.ones(m, bool), scale=Selection().scale, qc=Selection().qc,
                          partition=partition, plan=plan, progress=False)
    assert held.counts.tolist() == np.bincount(component).tolist()
    x = np.random.default_rng(1).standard_normal((n, 3))
    weights = np.array([[1.0, 2.0], [0.5, -1.0]])
    quad, out = product_pass(held, x, weights=weights, columns=np.array([0, 2]), split=True)
    for k in range(2):
        wk = w[component == k]
        assert np.allclose(quad[k], ((wk @ x) ** 2).sum(0), rtol=1e-4)
        assert np.allclose(out[k], wk.T @ ((wk @ x[:, [0, 2]]) * weights[k]), rtol=1e-4, atol=1e-3)


def test_cg_that_does_not_converge_is_reported(small, tmp_path):
    store, _ = small
    report = api.fit(store, method="MC-REML", pcs=0, mc_reml=api.MCRemlSettings(cg_max_iter=2), moments=WARM,
                     progress=False)
    paths = api.write_report(report, tmp_path / "out")
    written = json.loads((tmp_path / "out.json").read_text())
    for fit in written["traits"]:
        assert fit["converged"] is False and fit["cg_residual"] > report.extra["cg_tolerance"]
    assert paths == [tmp_path / "out.json"]  # no .hsq passes for a converged fit
    assert "MC-REML did not converge" in api.format_table(report)


@pytest.mark.parametrize("options, message", [
    ({"mc_reml": api.MCRemlSettings}, "mc_reml: must be an MCRemlSettings"),
    ({"bivariate": "full,gappy"}, "bivariate goes with method='reml' or ml (the exact path), not mc-reml"),
    ({"memory_limit": "2MB"}, "MC-REML for 500 samples x 2000 markers (0.98 MiB of genotypes held per worker) with "
                              "mc_samples=100:"),
])
def test_bad_arguments_are_one_line(small, options, message):
    store, _ = small
    with pytest.raises(ParameterError) as error:
        api.fit(store, method="mc-reml", progress=False, **options)
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("settings, message", [
    ({"mc_samples": 1}, "mc_samples: must be an integer >= 2, not 1"),
    ({"cg_tolerance": 0}, "cg_tolerance: must be a number in (0, 0.1], not 0"),
    ({"cg_max_iter": 0}, "cg_max_iter: must be an integer >= 1, not 0"),
])
def test_bad_settings(settings, message):
    with pytest.raises(ParameterError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        api.MCRemlSettings(**settings)


def test_command_line(small, tmp_path, capsys):
    store, _ = small
    assert main(["fit", str(store), "--method", "mc-reml", "--pcs", "0", "--mc-samples", "1",
                 "--out", str(tmp_path / "x")]) == 2
    assert "argument --mc-samples: must be an integer >= 2, not '1'" in capsys.readouterr().err
    code = main(["--quiet", "fit", str(store), "--method", "mc-reml", "--pcs", "0", "--memory-limit", "2MB",
                 "--out", str(tmp_path / "x")])
    error = capsys.readouterr().err
    assert code == 2 and "--mc-samples 100" in error and "--memory-limit 2000000" in error
