"""--covar (categorical) and --qcovar (quantitative): parsing, coding, fits and bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest

import dense_reference as dense
from conftest import centred_kinship
from dask_h2.io.convert import simulate_to
from dask_h2.cli import main
from dask_h2.io.covariates import indicators, read_covariates
from dask_h2.kinship.eigen import eigendecompose
from dask_h2.errors import InputError
from dask_h2.greml.univariate import fit_traits
from dask_h2.traits import check_full_rank
from dask_h2.io.simulate import SimulationDesign

IDS = np.array(["s1", "s2", "s3", "s4", "s5", "s6"], dtype=object)


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_indicators_drop_the_first_level_and_keep_missing_rows_missing():
    values, names = indicators(np.array(["b", "a", None, "c", "a"], dtype=object), "site")
    assert names == ["site=b", "site=c"]
    np.testing.assert_array_equal(values[[0, 1, 3, 4]], [[1, 0], [0, 0], [0, 1], [0, 0]])
    assert np.isnan(values[2]).all()


def test_a_categorical_covariate_with_one_level_is_refused():
    with pytest.raises(InputError, match="'sex': only one level"):
        indicators(np.array(["F", "F", None], dtype=object), "sex")


def test_read_covariates_orders_quantitative_first_and_marks_missing(tmp_path):
    qcovar = _write(tmp_path / "q.txt", ["FID IID age bmi", "f s1 30 22.5", "f s2 NA 21", "f s3 41 -9",
                                         "f s4 50 30", "f s5 22 19", "f s6 35 25", "f extra 1 1"])
    covar = _write(
        tmp_path / "c.txt", ["f s1 M A", "f s2 F B", "f s3 F A", "f s4 M C", "f s5 F NA"]
    )  # no header, s6 absent
    covariates = read_covariates(IDS, covar=covar, qcovar=qcovar)
    assert covariates.names == ["age", "bmi", "covar1=M", "covar2=B", "covar2=C"]
    values = covariates.values
    np.testing.assert_array_equal(values[0], [30, 22.5, 1, 0, 0])
    np.testing.assert_array_equal(values[3], [50, 30, 1, 0, 1])
    assert (
        np.isnan(values[1, 0])
        and np.isnan(values[2, 1])
        and np.isnan(values[4, 3:]).all()
        and np.isnan(values[5, 2:]).all()
    )


@pytest.mark.parametrize("lines, message", [
    (["f x1 1", "f x2 2"], "none of its IIDs match"),
    (["f s1 1", "f s2 1", "f s3 NA"], "'qcovar1': constant"),
    (["f s1 1", "f s2 tall"], "non-numeric value 'tall' in column 'qcovar1', line 2"),
    (["f s1 1", "f s1 2"], "IID 's1' appears on more than one line"),
])
def test_bad_quantitative_covariate_files(tmp_path, lines, message):
    path = _write(tmp_path / "q.txt", lines)
    with pytest.raises(InputError, match=message) as error:
        read_covariates(IDS, qcovar=path)
    assert str(path) in str(error.value)


def test_rank_deficiency_names_the_dependent_columns():
    rng = np.random.default_rng(0)
    a = rng.normal(size=20)
    X = np.column_stack([np.ones(20), a, 2 * a - 1, rng.normal(size=20), np.zeros(20)])
    with pytest.raises(InputError, match=r"trait t: fixed effects are rank deficient: b, z are constant or a linear"):
        check_full_rank(X, ["intercept", "a", "b", "c", "z"], what="trait t")
    check_full_rank(X[:, :2], ["intercept", "a"], what="trait t")  # full rank: no error


def test_fit_with_categorical_and_quantitative_covariates_equals_dense(tmp_path):
    n = 200
    K = centred_kinship(n, 500, seed=4)
    eigen = eigendecompose(K.copy())
    rng = np.random.default_rng(3)
    ids = np.array([f"s{i}" for i in range(n)], dtype=object)
    site = rng.choice(["north", "south", "west"], n)
    age = rng.normal(50, 10, n)
    y = 0.05 * age + (site == "west") + np.linalg.cholesky(0.4 * K + 0.6 * np.eye(n)) @ rng.normal(size=n)
    covar = _write(tmp_path / "c.txt", [f"f {i} {s}" for i, s in zip(ids, site)])
    qcovar = _write(tmp_path / "q.txt", [f"f {i} {float(a)!r}" for i, a in zip(ids, age)])
    covariates = read_covariates(ids, covar=covar, qcovar=qcovar)
    (fit,) = fit_traits(eigen, y, names=["y"], method="REML", pcs=2, covariates=covariates.values,
                        covariate_names=covariates.names)
    X = np.column_stack([np.ones(n), eigen.principal_components(2), age, site == "south", site == "west"])
    h2, logl = dense.fit_h2(K, y, X, "REML")
    assert fit.h2 == pytest.approx(h2, abs=1e-6) and fit.logL == pytest.approx(logl, rel=1e-8)
    assert len(fit.beta) == 6 and fit.beta[3] == pytest.approx(0.05, abs=0.02)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("covar")
    store = simulate_to(
        folder / "sim.zarr", SimulationDesign(n_samples=150, n_markers=800, h2=(0.5,), seed=9), progress=False
    )
    return store


def _one_line_error(capsys, argv) -> str:
    assert main(["--quiet", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dask-h2: error: ") and "\n" not in err
    return err


def test_cli_fit_with_covariates(store, tmp_path, capsys):
    ids = [f"ind{i + 1}" for i in range(150)]
    rng = np.random.default_rng(1)
    covar = _write(tmp_path / "c.txt", ["FID IID batch"] + [f"{i} {i} {'b' + str(k % 3)}" for k, i in enumerate(ids)])
    qcovar = _write(
        tmp_path / "q.txt", [f"{i} {i} {rng.normal():.6f}" for i in ids[:-5]] + [f"{i} {i} NA" for i in ids[-5:]]
    )
    assert main(["--quiet", "fit", str(store), "--out", str(tmp_path / "fit"), "--pcs", "0",
                 "--covar", str(covar), "--qcovar", str(qcovar)]) == 0
    report = json.loads((tmp_path / "fit.json").read_text())
    assert report["fixed_effects"] == ["intercept", "qcovar1", "batch=b1", "batch=b2"]
    (trait,) = report["traits"]
    assert trait["n"] == 145 and len(trait["beta"]) == 4
    assert trait["h2_ci_low"] <= trait["h2"] <= trait["h2_ci_high"]


@pytest.mark.parametrize("option, lines, message", [
    ("--qcovar", ["f nobody 1", "f noone 2"], "none of its IIDs match the 150 samples"),
    ("--qcovar", [f"f ind{i + 1} 7" for i in range(150)], "constant (7)"),
    ("--qcovar", ["f ind1 1.5", "f ind2 tall"], "non-numeric value 'tall'"),
    ("--covar", [f"f ind{i + 1} A" for i in range(150)], "only one level (A)"),
])
def test_cli_bad_covariates_exit_2_with_one_line(store, tmp_path, capsys, option, lines, message):
    path = _write(tmp_path / "cov.txt", lines)
    err = _one_line_error(capsys, ["fit", str(store), "--out", str(tmp_path / "fit"), option, str(path)])
    assert message in err and str(path) in err


def test_cli_rank_deficient_covariates_exit_2(store, tmp_path, capsys):
    rng = np.random.default_rng(2)
    lines = []
    for i in range(150):
        x = rng.normal()
        lines.append(f"f ind{i + 1} {float(x)!r} {float(3 * x + 1)!r}")
    path = _write(tmp_path / "q.txt", lines)
    err = _one_line_error(capsys, ["fit", str(store), "--out", str(tmp_path / "fit"), "--qcovar", str(path)])
    assert "rank deficient: qcovar2 is constant or a linear combination" in err
