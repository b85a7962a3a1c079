"""The moments path (randomized Haseman–Elston) against an independent dense computation.

The dense reference forms every K_k (n × n) from the genotypes with numpy, the projection
P of the fixed effects, and with the same probe vectors (the documented stream of --seed)
evaluates the same randomized estimator and its delete-one-block jackknife by brute force,
recomputing every K_k without each block. The streamed estimate (float32 products over
marker chunks, no n × n matrix) must equal it to float32 rounding.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr

from dask_h2.io.convert import simulate_to
from dask_h2 import api
from dask_h2.cli import main
from dask_h2.errors import InputError, ParameterError
from dask_h2.jackknife import jackknife_se
from dask_h2.moments.equations import jackknife_blocks
from dask_h2.moments.settings import MomentsSettings
from dask_h2.kinship.pcs import RHE_GROUP
from dask_h2.io.simulate import SimulationDesign
from dask_h2.store import write_traits

def fit_rhe(store, **options):
    """The moments path's fit of ``store``, as the API gives it."""
    return api.fit(store, method="RHE", progress=False, **options)


N, M = 300, 1500
PROBES, BLOCKS, SEED = 10, 20, 7


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rhe") / "sim.zarr"
    simulate_to(path, SimulationDesign(n_samples=N, n_markers=M, h2=(0.6, 0.3), seed=11), progress=False)
    root = zarr.open_group(path, mode="r+")
    traits = root["traits"][:]
    traits[np.random.default_rng(3).choice(N, N // 10, replace=False), 1] = np.nan
    write_traits(root, traits, trait_name=np.array(["full", "gappy"], dtype=object))
    return path


@pytest.fixture(scope="module")
def qcovar(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("covariates") / "age.txt"
    values = np.random.default_rng(5).normal(50, 10, N)
    values[4] = np.nan  # one sample without the covariate
    path.write_text("".join(f"ind{i + 1} ind{i + 1} {'NA' if np.isnan(v) else v}\n" for i, v in enumerate(values)))
    return path


def standardized(store: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """W (M_used, n) float64 standardized by sqrt(2p(1−p)) with missing calls at 0, the MAF (M_used,)
    and the jackknife block of each used marker (blocks of equal numbers of markers before QC)."""
    g = zarr.open_group(store, mode="r")["call_dosage"][:].astype(np.float64)
    observed = g >= 0
    p = np.where(observed, g, 0).sum(1) / observed.sum(1) / 2
    keep = (p > 0) & (p < 1)
    w = np.where(observed, g - 2 * p[:, None], 0.0)[keep] / np.sqrt(2 * p * (1 - p))[keep, None]
    return w, np.minimum(p, 1 - p)[keep], jackknife_blocks(g.shape[0], BLOCKS)[keep]


def dense_estimates(w: np.ndarray, component: np.ndarray, y: np.ndarray, X: np.ndarray, probes: np.ndarray,
                    block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(σ² (K + 1,), SE (K + 1,)) of the randomized estimator, computed densely: the delete-one-block
    jackknife's variance plus that of the trait's scale (:mod:`dask_h2.moments.equations`)."""
    observed = ~np.isnan(y) & ~np.isnan(X).any(axis=1)
    w, y, X, z = w[:, observed], y[observed], X[observed], probes[observed]
    n, c = X.shape
    P = np.eye(n) - X @ np.linalg.solve(X.T @ X, X.T)
    u = P @ z

    def solve(keep: np.ndarray) -> np.ndarray:
        kinships = [w[(component == k) & keep].T @ w[(component == k) & keep] / ((component == k) & keep).sum()
                    for k in range(component.max() + 1)]
        size = len(kinships)
        lhs, rhs = np.empty((size + 1, size + 1)), np.empty(size + 1)
        for k, Kk in enumerate(kinships):
            for l, Kl in enumerate(kinships):
                lhs[k, l] = np.sum((Kk @ u) * (P @ Kl @ u)) / u.shape[1]
            lhs[k, size] = lhs[size, k] = np.trace(P @ Kk)
            rhs[k] = y @ P @ Kk @ P @ y
        lhs[size, size], rhs[size] = n - c, y @ P @ y
        return np.linalg.solve(lhs, rhs), lhs, rhs[size]

    replicates = np.array([solve(block != j)[0] for j in np.unique(block)])
    sigma2, lhs, yy = solve(np.ones(w.shape[0], bool))
    scale = 2 * sigma2 @ lhs @ sigma2 / yy**2  # Var(yᵀPy) / (yᵀPy)² = 2 tr(PVPV) / (yᵀPy)²: the trait's scale
    return sigma2, np.sqrt(jackknife_se(replicates) ** 2 + scale * sigma2**2)


@pytest.mark.parametrize("partition, pcs, with_covariate", [
    (None, 0, False), (None, 3, True), ("maf:0,0.1,0.25,0.5", 3, True), ("maf:0,0.1,0.25,0.5", 0, False)])
def test_streamed_estimate_equals_the_dense_randomized_estimator(store, qcovar, partition, pcs, with_covariate):
    settings = MomentsSettings(n_probes=PROBES, n_blocks=BLOCKS, seed=SEED)
    report = fit_rhe(store, moments=settings, partition=partition, pcs=pcs, qcovar=qcovar if with_covariate else None)
    w, maf, block = standardized(store)
    edges = [0.0, 0.1, 0.25, 0.5] if partition else [0.0, 0.5]
    component = np.clip(np.searchsorted(edges, maf, side="right") - 1, 0, len(edges) - 2)
    root = zarr.open_group(store, mode="r")
    columns = [np.ones((N, 1))] + ([root[RHE_GROUP]["pcs"][:]] if pcs else [])
    if with_covariate:
        cells = [line.split()[2] for line in qcovar.read_text().splitlines()]
        columns.append(np.array([np.nan if c == "NA" else float(c) for c in cells])[:, None])
    X = np.hstack(columns)
    probes = np.random.default_rng([SEED, 1]).standard_normal((N, PROBES))
    for j, fit in enumerate(report.traits):
        sigma2, se = dense_estimates(w, component, root["traits"][:, j], X, probes, block)
        streamed = [c.sigma2 for c in fit.components] + [fit.sigma_e2]
        streamed_se = [c.sigma2_se for c in fit.components] + [fit.sigma_e2_se]
        np.testing.assert_allclose(streamed, sigma2, rtol=1e-5, atol=1e-8)
        np.testing.assert_allclose(streamed_se, se, rtol=1e-5, atol=1e-8)
        assert fit.h2 == pytest.approx(sigma2[:-1].sum() / sigma2.sum(), rel=1e-5, abs=1e-8)
        assert fit.n == int((~np.isnan(root["traits"][:, j]) & ~np.isnan(X).any(axis=1)).sum())


def test_one_missingness_pattern_equals_the_dense_estimator(tmp_path):
    """With every sample in every fit, the squares of the genotypes come from the marker counts."""
    path = tmp_path / "complete.zarr"
    simulate_to(path, SimulationDesign(n_samples=N, n_markers=M, h2=(0.4,), seed=13), progress=False)
    report = fit_rhe(
        path,
        moments=MomentsSettings(n_probes=PROBES, n_blocks=BLOCKS, seed=SEED),
        partition="maf:0,0.2,0.5",
        pcs=2,
    )
    w, maf, block = standardized(path)
    component = (maf >= 0.2).astype(int)
    X = np.hstack([np.ones((N, 1)), zarr.open_group(path, mode="r")[RHE_GROUP]["pcs"][:]])
    probes = np.random.default_rng([SEED, 1]).standard_normal((N, PROBES))
    sigma2, se = dense_estimates(w, component, zarr.open_group(path, mode="r")["traits"][:, 0], X, probes, block)
    (fit,) = report.traits
    np.testing.assert_allclose([c.sigma2 for c in fit.components] + [fit.sigma_e2], sigma2, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose([c.sigma2_se for c in fit.components] + [fit.sigma_e2_se], se, rtol=1e-5, atol=1e-8)


def test_marker_table_and_pcs_are_cached_for_the_next_fit(tmp_path, caplog):
    path = tmp_path / "small.zarr"
    simulate_to(path, SimulationDesign(n_samples=120, n_markers=700, h2=(0.5,), seed=2), progress=False)
    settings = MomentsSettings(n_blocks=20, pc_passes=3)
    first = fit_rhe(path, moments=settings, pcs=2)
    with caplog.at_level("INFO", logger="dask_h2"):
        again = fit_rhe(path, moments=settings, pcs=2)
    assert first.extra["pc_sketch_passes"] == 3 and again.extra["pc_sketch_passes"] == 0
    assert first.extra["passes_over_genotypes"] == again.extra["passes_over_genotypes"] == 1
    assert "reusing the PCs" in caplog.text
    assert again.traits == first.traits
    assert fit_rhe(path, moments=MomentsSettings(n_blocks=20, pc_passes=2), pcs=2).extra["pc_sketch_passes"] == 2


@pytest.mark.slow
def test_standard_errors_match_the_spread_over_traits_drawn_from_the_model(tmp_path):
    """200 traits drawn from the model on one set of genotypes, fitted in one pass: the mean SE of h²,
    σ²g, σ²e and Vp is within 20 % of their SD over the traits (Vp's SE is mostly that of the trait's
    scale, which the jackknife over markers alone does not see; SD known to about ±5 %)."""
    path = tmp_path / "spread.zarr"
    simulate_to(
        path, SimulationDesign(n_samples=1000, n_markers=4000, h2=(0.5,), seed=21, n_populations=1), progress=False
    )
    w = standardized(path)[0]
    rng = np.random.default_rng(8)
    n_traits, h2 = 200, 0.5
    genetic = w.T @ rng.standard_normal((w.shape[0], n_traits)) / np.sqrt(w.shape[0])
    traits = np.sqrt(h2) * genetic + np.sqrt(1 - h2) * rng.standard_normal(genetic.shape)
    write_traits(
        zarr.open_group(path, mode="r+"), traits, trait_name=np.array([f"t{j}" for j in range(n_traits)], dtype=object)
    )
    report = fit_rhe(path, moments=MomentsSettings(n_blocks=100, seed=3), pcs=0)
    for name in ("h2", "sigma_g2", "sigma_e2", "vp"):
        values = np.array([getattr(t, name) for t in report.traits])
        ses = np.array([getattr(t, f"{name}_se") for t in report.traits])
        assert ses.mean() / values.std(ddof=1) == pytest.approx(1.0, abs=0.2), name


@pytest.mark.parametrize("n_markers, n_blocks", [(4809, 1000), (4809, 2500), (4809, 4809), (100, 20), (101, 20)])
def test_jackknife_blocks_hold_equal_numbers_of_consecutive_markers(n_markers, n_blocks):
    block = jackknife_blocks(n_markers, n_blocks)
    sizes = np.bincount(block)
    assert sizes.size == n_blocks and sizes.max() - sizes.min() <= 1 and sizes.sum() == n_markers
    assert np.all(np.diff(block) >= 0)  # consecutive


@pytest.mark.parametrize("n_markers, n_blocks, message", [(4809, 4810, "more than the 4809 markers"),
                                                          (4809, 19, "at least 20")])
def test_jackknife_blocks_are_bounded(n_markers, n_blocks, message):
    with pytest.raises(ValueError, match=message):
        jackknife_blocks(n_markers, n_blocks)


def test_more_blocks_than_markers_is_an_input_error(store):
    with pytest.raises(ParameterError, match=f"^n_blocks={M + 1}: .*more than the {M} markers selected"):
        fit_rhe(store, moments=MomentsSettings(n_blocks=M + 1), pcs=0)


def test_seed_is_recorded_and_repeats_the_estimate_exactly(store, tmp_path, capsys):
    out = tmp_path / "rhe"
    argv = ["--quiet", "fit", str(store), "--method", "rhe", "--pcs", "2", "--random-vectors", "5", "--seed", "9",
            "--jackknife-blocks", "25", "--out", str(out)]
    assert main(argv) == 0
    first = json.loads(out.with_suffix(".json").read_text())
    assert main(argv) == 0
    again = json.loads(out.with_suffix(".json").read_text())
    assert first["seed"] == 9 and first["random_vectors"] == 5 and first["jackknife_blocks"] == 25
    assert first["traits"] == again["traits"]
    hsq = (tmp_path / "rhe.full.hsq").read_text().splitlines()
    assert [line.split("\t")[0] for line in hsq] == ["Source", "V(G)", "V(e)", "Vp", "V(G)/Vp", "n"]


@pytest.mark.parametrize("options, message", [
    ({"n_probes": 1}, "n_probes: must be an integer >= 2, not 1"), ({"n_blocks": 19}, "n_blocks: must be an integer >= 20"),
    ({"n_probes": 2.5}, "n_probes: must be an integer"), ({"seed": -1}, "seed: must be an integer >= 0")])
def test_bad_settings(options, message):
    with pytest.raises(InputError, match=message):
        MomentsSettings(**options)


def test_component_without_markers_is_an_input_error(store):
    with pytest.raises(InputError, match="component 'maf0-0.001' has no markers"):  # n = 300: monomorphic only
        fit_rhe(store, partition="maf:0,0.001,0.5", pcs=0)


def test_exact_path_beyond_this_machine_names_the_moments_path(store, tmp_path, capsys, monkeypatch):
    from types import SimpleNamespace

    import dask_h2.planning

    monkeypatch.setattr(dask_h2.planning.psutil, "virtual_memory", lambda: SimpleNamespace(total=2**20))
    assert main(["--quiet", "fit", str(store), "--out", str(tmp_path / "exact")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "300 samples" in err and "--method mc-reml (REML) and rhe (moments) estimate" in err
    assert main(["--quiet", "fit", str(store), "--method", "rhe", "--pcs", "0", "--out", str(tmp_path / "rhe")]) == 0


@pytest.mark.parametrize("options, message", [
    (["--random-vectors", "1"], "argument --random-vectors: must be an integer >= 2, not '1'"),
    (["--jackknife-blocks", "0"], "argument --jackknife-blocks: must be an integer >= 20, not '0'"),
    (["--partition", "PARTS"], "not in the store, e.g. 'rs_unknown'"),
    (["--partition", "maf:0,0.001,0.5"], "component 'maf0-0.001' has no markers after QC"),
    (["--maf", "0.3", "--partition", "maf:0.05,0.2,0.5"], "component 'maf0.05-0.2' has no markers after QC"),
    (["--pcs", "298"], "--pcs 298: must be between 0 and 297"),
    (["--grm", "GRM", "--pheno", "PHENO"], "cannot use --grm")])
def test_bad_moments_input_is_one_line_and_exit_2(store, tmp_path, capsys, options, message):
    parts = tmp_path / "parts.txt"
    parts.write_text("snp1 a\nrs_unknown b\n")
    pheno = tmp_path / "pheno.txt"
    pheno.write_text("s1 s1 1\n")
    options = [{"PARTS": str(parts), "PHENO": str(pheno)}.get(o, o) for o in options]
    argv = ["--quiet", "fit", *([] if "--grm" in options else [str(store)]), "--method", "rhe", *options,
            "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dask-h2: error: ") and "\n" not in err and message in err, err
    assert not (tmp_path / "out.json").exists()


def test_trait_with_too_few_samples_for_its_fixed_effects(store, tmp_path):
    path = tmp_path / "few.zarr"
    simulate_to(path, SimulationDesign(n_samples=60, n_markers=400, h2=(0.5,), seed=1), progress=False)
    root = zarr.open_group(path, mode="r+")
    traits = root["traits"][:]
    traits[12:] = np.nan
    write_traits(root, traits, trait_name=np.array(["rare"], dtype=object))
    with pytest.raises(InputError, match=r"trait rare: 12 of 60 samples observed, too few for 11 fixed effects"):
        fit_rhe(path, pcs=10)


def test_store_that_cannot_be_written_fits_from_memory_and_a_local_scratch(store, monkeypatch, caplog):
    settings = MomentsSettings(n_blocks=BLOCKS, seed=SEED, pc_markers=1000)
    expected = fit_rhe(store, moments=settings, pcs=2)
    del zarr.open_group(store, mode="r+")[RHE_GROUP]  # the PCs are computed again, and cannot be cached
    open_group = zarr.open_group

    def read_only(path, mode="r", **kwargs):
        if mode != "r" and str(path) == str(store):
            raise PermissionError(30, "Read-only file system")
        return open_group(path, mode=mode, **kwargs)

    monkeypatch.setattr(zarr, "open_group", read_only)  # the module every part of the fit opens groups through
    with caplog.at_level("WARNING", logger="dask_h2"):
        again = fit_rhe(store, moments=settings, pcs=2)
    assert "cannot be written" in caplog.text and "could not cache the PCs" in caplog.text
    assert again.traits == expected.traits
