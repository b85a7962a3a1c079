"""h² on the liability scale: Lee et al. 2011's transformation, case-control coding, --prevalence."""
from __future__ import annotations

import json
import math
from statistics import NormalDist

import numpy as np
import pytest

from dask_h2.results import liability_factor

from conftest import centred_kinship
from dask_h2.cli import main
from dask_h2.kinship.eigen import eigendecompose
from dask_h2.errors import InputError
from dask_h2.greml.univariate import dense_subset_eigen, fit_traits
from dask_h2.io.gcta import write_grm
from dask_h2.traits import case_control_coding, parse_prevalence
from dask_h2.io.reports import hsq_text


def lee_2011(h2_observed: float, K: float, P: float) -> float:
    """Lee et al. 2011 (AJHG 88:294), eq. 23: h²_L = h²_O K²(1 − K)² / (P(1 − P) z²), z the normal
    density at the threshold t = Φ⁻¹(1 − K); computed with the standard library only."""
    t = NormalDist().inv_cdf(1.0 - K)
    z = math.exp(-t * t / 2.0) / math.sqrt(2.0 * math.pi)
    return h2_observed * K**2 * (1.0 - K) ** 2 / (P * (1.0 - P) * z**2)


@pytest.mark.parametrize("K, P", [(0.1, 0.5), (0.01, 0.5), (0.3, 0.25), (0.001, 0.02), (0.5, 0.5), (0.9, 0.6)])
def test_factor_equals_the_closed_form_of_lee_2011(K, P):
    for h2 in (0.05, 0.3, 0.7):
        assert h2 * liability_factor(P, K) == pytest.approx(lee_2011(h2, K, P), rel=1e-10)


def test_case_control_codings():
    np.testing.assert_array_equal(case_control_coding(np.array([0, 1, np.nan, 1.0]), "d"), [0, 1, np.nan, 1])
    np.testing.assert_array_equal(case_control_coding(np.array([1, 2, 0, 2.0]), "d"), [1, 2, np.nan, 2])
    for values, shown in (([0, 1, 2, 3.5], "4 distinct values"), ([1, 1, 1.0], "1 distinct values"),
                          ([0.2, 0.7, 0.2], "(0.2, 0.7)")):
        with pytest.raises(InputError, match=r"trait d: prevalence needs a case-control trait.*" + shown.replace(
                "(", r"\(").replace(")", r"\)")):
            case_control_coding(np.array(values), "d")


@pytest.mark.parametrize("text, message", [("0", "strictly between 0 and 1"), ("1.2", "strictly between"),
                                           ("0.1,0.2", "2 values for 3 traits"), ("x", "'x' is not a number")])
def test_bad_prevalence(text, message):
    with pytest.raises(InputError, match=message):
        parse_prevalence(text, ["a", "b", "c"])


def test_prevalence_one_for_all_or_one_per_trait():
    assert parse_prevalence("0.1", ["a", "b"]) == [0.1, 0.1]
    assert parse_prevalence("0.1,NA", ["a", "b"]) == [0.1, None]
    assert parse_prevalence(None, ["a"]) == [None]


@pytest.fixture(scope="module")
def case_control():
    """A K, a 0/1 trait drawn from a liability threshold and the same trait coded 1/2 with 0 missing."""
    n = 300
    K = centred_kinship(n, 900, seed=12)
    rng = np.random.default_rng(4)
    liability = np.linalg.cholesky(0.5 * K + 0.5 * np.eye(n)) @ rng.standard_normal(n)
    disease = (liability > np.quantile(liability, 0.6)).astype(float)
    plink = disease + 1.0
    plink[:7] = 0.0  # PLINK's missing phenotype
    return K, disease, plink


def test_liability_h2_from_the_cases_among_fitted_samples(case_control):
    K, disease, plink = case_control
    eigen = eigendecompose(K.copy())
    (coded,) = fit_traits(
        eigen, plink, names=["d"], method="REML", pcs=0, prevalence=[0.05], subset_eigen=dense_subset_eigen(K)
    )
    plain, = fit_traits(eigendecompose(K[7:, 7:].copy()), disease[7:], names=["d"], method="REML", pcs=0)
    assert coded.n == K.shape[0] - 7 and coded.h2 == pytest.approx(plain.h2, abs=1e-6)
    P = float(disease[7:].mean())
    assert coded.case_fraction == pytest.approx(P, abs=1e-15) and coded.prevalence == 0.05
    assert coded.h2_liability == pytest.approx(lee_2011(coded.h2, 0.05, P), rel=1e-10)
    assert coded.h2_liability_se == pytest.approx(lee_2011(coded.h2_se, 0.05, P), rel=1e-10)
    assert plain.h2_liability is None


def test_hsq_adds_gcta_liability_lines(case_control):
    K, disease, _ = case_control
    fit, = fit_traits(eigendecompose(K.copy()), disease, names=["d"], method="REML", pcs=0, prevalence=[0.1])
    lines = hsq_text(fit).splitlines()
    assert lines[5:8] == [
        "The estimate of variance explained on the observed scale is transformed to that on the underlying scale:",
        f"(Proportion of cases in the sample = {fit.case_fraction:.6f}; User-specified disease prevalence = 0.100000)",
        f"V(G)/Vp_L\t{fit.h2_liability:.6f}\t{fit.h2_liability_se:.6f}"]
    assert [line.split("\t")[0] for line in lines[:5] + lines[8:]] == [
        "Source", "V(G)", "V(e)", "Vp", "V(G)/Vp", "logL", "logL0", "LRT", "df", "Pval", "n"]


def test_cli_reports_liability_and_refuses_a_quantitative_trait(case_control, tmp_path, capsys):
    K, disease, _ = case_control
    iid = [f"i{j}" for j in range(K.shape[0])]
    write_grm(tmp_path / "k", K, iid=np.array(iid), n_markers=900)
    quantitative = np.random.default_rng(0).normal(size=K.shape[0])
    (tmp_path / "pheno.txt").write_text("FID IID disease height\n" + "".join(
        f"{i} {i} {int(d)} {float(q)!r}\n" for i, d, q in zip(iid, disease, quantitative)))
    common = ["--quiet", "fit", "--grm", str(tmp_path / "k"), "--pheno", str(tmp_path / "pheno.txt"), "--pcs", "0"]
    assert main([*common, "--out", str(tmp_path / "out"), "--prevalence", "0.1,NA"]) == 0
    report = json.loads((tmp_path / "out.json").read_text())
    disease_fit, height_fit = report["traits"]
    assert {"h2_liability", "h2_liability_se", "prevalence", "case_fraction"} <= set(disease_fit)
    assert "h2_liability" not in height_fit and "Vp_L" in (tmp_path / "out.disease.hsq").read_text()
    capsys.readouterr()
    assert main([*common, "--out", str(tmp_path / "bad"), "--prevalence", "0.1"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("dask-h2: error: trait height: --prevalence needs a case-control trait")
    assert "\n" not in error and not (tmp_path / "bad.json").exists()
