"""Traits that cannot be fitted are refused, never fitted into a number (issue 12, items 2 and 8):
a constant trait, one with an infinite value, one with too few observed samples. Alone they are
an input error (one line, exit 2); among several they are listed as not estimable in the JSON
while the others are fitted as if alone. And a fit is the same at any scale of the trait."""
from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

from dask_h2.io.convert import simulate_to
from dask_h2 import api
from dask_h2.cli import main
from dask_h2.kinship.eigen import eigendecompose
from dask_h2.errors import InputError
from dask_h2.greml.univariate import fit_traits
from dask_h2.io.gcta import read_grm, write_grm
from dask_h2.io.simulate import SimulationDesign

from conftest import centred_kinship
from dense_reference import loglik as dense_loglik

N = 150
IIDS = [f"s{i}" for i in range(N)]


@pytest.fixture(scope="module")
def gcta(tmp_path_factory):
    folder = tmp_path_factory.mktemp("degenerate")
    K = centred_kinship(N, 600, seed=8)
    write_grm(folder / "k", K, iid=np.array(IIDS, dtype=object), n_markers=600)
    y = np.random.default_rng(1).multivariate_normal(np.zeros(N), 0.5 * K + 0.5 * np.eye(N))
    return folder, K, y


def _pheno(path, columns):
    path.write_text(
        "".join(f"{iid} {iid} " + " ".join(str(c[i]) for c in columns) + "\n" for i, iid in enumerate(IIDS))
    )
    return path


def _fit_grm(capsys, folder, pheno, *extra):
    code = main(["--quiet", "fit", "--grm", str(folder / "k"), "--pheno", str(pheno), "--out", str(folder / "out"),
                 "--pcs", "2", *extra])
    captured = capsys.readouterr()
    return code, captured.err.strip()


@pytest.mark.parametrize("values, reason", [
    (lambda y: np.full(N, 3.25), "constant (3.25)"),
    (lambda y: np.where(np.arange(N) == 7, np.inf, y), "non-finite value inf"),
    (lambda y: np.where(np.arange(N) == 7, -np.inf, y), "non-finite value -inf"),
    (lambda y: np.where(np.arange(N) < N - 4, np.nan, y), "4 of 150 samples observed, too few for 3 fixed effects"),
])
def test_a_lone_degenerate_trait_is_refused(gcta, tmp_path, capsys, values, reason):
    folder, K, y = gcta
    pheno = _pheno(tmp_path / "p.txt", [np.where(np.isnan(v := values(y)), "NA", v.astype(object))])
    code, err = _fit_grm(capsys, folder, pheno)
    assert code == 2 and err.startswith("dask-h2: error: trait pheno1: ") and reason in err and "\n" not in err
    assert not (folder / "out.json").exists()


def test_an_infinite_covariate_is_refused(gcta, tmp_path, capsys):
    folder, K, y = gcta
    pheno = _pheno(tmp_path / "p.txt", [y])
    qcovar = _pheno(tmp_path / "q.txt", [np.where(np.arange(N) == 3, "Inf", np.arange(N).astype(object))])
    code, err = _fit_grm(capsys, folder, pheno, "--qcovar", str(qcovar))
    assert code == 2 and "q.txt" in err and "non-finite value inf" in err


def test_one_not_estimable_trait_leaves_the_others_fitted(gcta, tmp_path, capsys):
    """Item 8: an all-NA trait stopped every other trait of the fit."""
    folder, K, y = gcta
    constant, missing = np.full(N, 2.0), np.full(N, "NA", dtype=object)
    code, err = _fit_grm(capsys, folder, _pheno(tmp_path / "p.txt", [y, missing, y[::-1], constant]))
    assert code == 0
    assert err.splitlines() == [
        "dask-h2: warning: trait pheno2: 0 of 150 samples observed, too few for 3 fixed effects (at least 5 needed); "
        "not estimable, the other traits are fitted",
        "dask-h2: warning: trait pheno4: constant (2) over its 150 samples: no variance to partition; "
        "not estimable, the other traits are fitted"]
    report = json.loads((folder / "out.json").read_text())
    assert [t["name"] for t in report["traits"]] == ["pheno1", "pheno3"]
    assert [t["name"] for t in report["not_estimable"]] == ["pheno2", "pheno4"]
    assert "too few" in report["not_estimable"][0]["reason"] and not (folder / "out.pheno2.hsq").exists()
    alone = fit_traits(
        eigendecompose(read_grm(folder / "k").kinship), np.column_stack([y, y[::-1]]), names=["a", "b"], pcs=2
    )
    assert [t["h2"] for t in report["traits"]] == [t.h2 for t in alone]


def test_not_estimable_trait_of_a_store(tmp_path):
    store = simulate_to(
        tmp_path / "s.zarr", SimulationDesign(n_samples=120, n_markers=800, h2=(0.5, 0.3), seed=2), progress=False
    )
    traits = zarr.open_group(store, mode="r+")["traits"]
    values = traits[:]
    values[:, 1] = np.nan
    traits[:] = values
    with pytest.warns(RuntimeWarning, match="trait trait2: 0 of 120"):
        report = api.fit(store, pcs=3, progress=False)
    assert [t.name for t in report.traits] == ["trait1"] and report.to_dict()["not_estimable"][0]["name"] == "trait2"
    values[:, 0] = 5.0
    traits[:] = values
    with pytest.raises(InputError, match="no trait can be fitted: trait trait1: constant .*; trait trait2: 0 of 120"):
        api.fit(store, pcs=3, progress=False)


def test_a_trait_equal_to_a_covariate_is_not_estimable(gcta):
    folder, K, y = gcta
    x = np.random.default_rng(4).normal(size=N)
    with pytest.raises(InputError, match="trait t: fitted exactly by the fixed effects"):
        fit_traits(eigendecompose(K.copy()), (2 * x + 1)[:, None], names=["t"], pcs=0, covariates=x[:, None])


@pytest.mark.parametrize("scale", [1e-150, 1e-20, 1e20, 1e150])
def test_the_fit_is_the_same_at_any_scale(gcta, scale):
    """Item 2: y x 1e-150 raised ZeroDivisionError, y x 1e150 OverflowError."""
    folder, K, y = gcta
    eigen = eigendecompose(K.copy())
    X = np.column_stack([np.ones(N), eigen.vectors[:, :2]])
    (one,) = fit_traits(eigen, y[:, None], names=["y"], pcs=2)
    (scaled,) = fit_traits(eigen, (y * scale)[:, None], names=["y"], pcs=2)
    assert scaled.h2 == pytest.approx(one.h2, abs=1e-6) and scaled.h2_se == pytest.approx(one.h2_se, rel=1e-5)
    assert scaled.lrt == pytest.approx(one.lrt, rel=1e-8) and scaled.pval == pytest.approx(one.pval, rel=1e-6)
    assert (scaled.h2_ci_low, scaled.h2_ci_high) == pytest.approx((one.h2_ci_low, one.h2_ci_high), abs=1e-6)
    for name in ("vp", "sigma_g2", "sigma_e2", "vp_se", "sigma_g2_se", "sigma_e2_se"):
        assert getattr(scaled, name) == pytest.approx(getattr(one, name) * scale**2, rel=1e-5), name
    assert np.allclose(scaled.beta, np.array(one.beta) * scale, rtol=1e-6, atol=0)
    # log L in the units of y: the dense likelihood of y, shifted by (n - p) log(scale) for REML
    assert one.logL == pytest.approx(dense_loglik(K, y, X, one.h2, "REML"), abs=1e-6)
    assert scaled.logL == pytest.approx(one.logL - (N - 3) * np.log(scale), rel=1e-12, abs=1e-6)


@pytest.mark.slow
def test_the_moments_estimator_leaves_out_a_constant_trait(tmp_path):
    """--method rhe: a constant trait gave h2 = -8.3, an infinite value NaN; now they are not
    estimable and the other traits are fitted as they would be alone."""
    design = SimulationDesign(n_samples=200, n_markers=1500, h2=(0.5, 0.3), seed=3)
    both = simulate_to(tmp_path / "both.zarr", design, progress=False)
    traits = zarr.open_group(both, mode="r+")["traits"]
    values = traits[:]
    values[:, 1] = 2.0
    traits[:] = values
    with pytest.warns(RuntimeWarning, match="trait trait2: constant"):
        report = api.fit(both, method="RHE", pcs=2, progress=False)
    assert [t.name for t in report.traits] == ["trait1"] and report.to_dict()["not_estimable"][0]["name"] == "trait2"
    values[:, 1] = values[:, 0]
    values[5, 1] = np.inf
    traits[:] = values
    with pytest.warns(RuntimeWarning, match="trait trait2: non-finite value inf"):
        again = api.fit(both, method="RHE", pcs=2, progress=False)
    assert again.traits[0].h2 == report.traits[0].h2 and np.isfinite(report.traits[0].h2_se)
    values[:, 0] = np.nan
    traits[:] = values
    with pytest.raises(InputError, match="no trait can be fitted"):
        api.fit(both, method="RHE", pcs=2, progress=False)


def test_several_grms_leave_out_a_constant_trait(gcta):
    """fit --mgrm: a constant trait is not estimable; the other is fitted as it would be alone."""
    from dask_h2.greml.components import fit_components
    from dask_h2.results import NotEstimable

    folder, K, y = gcta
    halves = [K / 2, K / 2 + 0.01 * np.eye(N)]
    args = {"X": np.ones((N, 1)), "columns": ["intercept"], "component_names": ["a", "b"], "n_markers": [300, 300]}
    fitted, refused = fit_components(halves, np.column_stack([y, np.full(N, 2.0)]), names=["y", "c"], **args)
    (alone,) = fit_components(halves, y[:, None], names=["y"], **args)
    assert isinstance(refused, NotEstimable) and "constant (2)" in refused.reason
    assert fitted.h2 == alone.h2 and [c.h2 for c in fitted.components] == [c.h2 for c in alone.components]


def test_bivariate_pair_with_a_constant_trait(gcta, tmp_path, capsys):
    """--bivariate: a pair with a constant trait is refused in one line (it failed deep in the
    likelihood: 'V is not positive definite'); with 'all', the other pairs are fitted."""
    folder, K, y = gcta
    pheno = _pheno(tmp_path / "p.txt", [y, np.full(N, 2.0), y[::-1]])
    code, err = _fit_grm(capsys, folder, pheno, "--bivariate", "pheno1,pheno2")
    assert code == 2 and err == ("dask-h2: error: pair pheno1,pheno2: trait pheno2: constant (2) over its 150 "
                                 "samples: no variance to partition")
    code, err = _fit_grm(capsys, folder, pheno, "--bivariate", "all")
    assert code == 0 and err.count("not estimable, the other pairs are fitted") == 2
    pairs = json.loads((folder / "out.json").read_text())["pairs"]
    assert [p["traits"] for p in pairs] == [["pheno1", "pheno3"]]
