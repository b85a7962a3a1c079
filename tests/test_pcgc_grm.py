"""PCGC from a GRM (``fit --grm PREFIX --method pcgc``): the dense estimator against the literal sums over
pairs i ≠ j (and its sample jackknife by literal refitting), and against the moments path's PCGC with
exact traces on the same genotypes, thresholds and covariates."""
from __future__ import annotations

import json

import numpy as np
import pytest
import zarr
from test_pcgc import PREVALENCE, exact_traces, store  # noqa: F401 (fixtures)
from test_rhe import N, standardized

from dask_h2 import api
from dask_h2.cli import main
from dask_h2.errors import ParameterError
from dask_h2.greml.pcgc import pcgc_of_kinships
from dask_h2.io.gcta import write_grm
from dask_h2.kinship.pcs import RHE_GROUP
from dask_h2.liability import case_probabilities
from dask_h2.store import read_strings


def literal(kinships, X, risk, keep):
    """h²_k (K,) from Σ over explicit pairs i ≠ j of the samples ``keep``, A_k = P K_k P with P of all samples."""
    P = np.eye(X.shape[0]) - X @ np.linalg.solve(X.T @ X, X.T)
    pairs = ~np.eye(X.shape[0], dtype=bool) & np.outer(keep, keep)
    vv, dd = np.outer(risk.u * risk.z, risk.u * risk.z), np.outer(risk.u**2, risk.u**2)
    A = [P @ K @ P for K in kinships]
    lhs = np.array([[np.sum((dd * a * b)[pairs]) for b in A] for a in A])
    return np.linalg.solve(lhs, [np.sum((vv * a)[pairs]) for a in A])


def test_dense_pcgc_equals_the_literal_sums_and_their_sample_jackknife():
    rng = np.random.default_rng(5)
    n, blocks = 120, 20
    W = [rng.standard_normal((m, n)) for m in (300, 200)]
    kinships = np.stack([w.T @ w / w.shape[0] for w in W])
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.integers(0, 2, n)])
    y = (rng.random(n) < 0.4).astype(float)
    estimates, risk = pcgc_of_kinships(kinships, y, X=X, prevalence=0.05, n_blocks=blocks, n_markers=[300, 200])
    expected = literal(kinships, X, risk, np.ones(n, bool))
    block = np.arange(n) % blocks
    replicates = np.array([literal(kinships, X, risk, block != b) for b in range(blocks)])
    jackknife = np.sqrt((blocks - 1) / blocks * np.sum((replicates - replicates.mean(0)) ** 2, axis=0))
    total = replicates.sum(1)
    total_se = np.sqrt((blocks - 1) / blocks * np.sum((total - total.mean()) ** 2))
    reference = case_probabilities(y, prevalence=0.05, X=X)
    assert np.array_equal(risk.u, reference.u) and risk.var_t > 0
    np.testing.assert_allclose(estimates.h2, expected, rtol=1e-10)
    np.testing.assert_allclose(estimates.h2_se, jackknife, rtol=1e-9)
    assert estimates.h2_total_se == pytest.approx(total_se, rel=1e-9)
    assert estimates.h2_marginal == pytest.approx(expected.sum() / (1 + risk.var_t), rel=1e-10)
    assert estimates.n_markers.tolist() == [300, 200]


@pytest.fixture
def gcta_files(store, tmp_path):  # noqa: F811
    """The store's genotypes as a GCTA GRM (K = W Wᵀ/M over the markers the moments path uses), its diseases as
    a phenotype file (``gappy`` 1/2 coded with NA) and age with the moments path's 2 PCs as covariates."""
    w, _, _ = standardized(store)
    root = zarr.open_group(store, mode="r")
    iid = read_strings(root, "sample_id")
    write_grm(tmp_path / "k", w.T @ w / w.shape[0], iid=iid, n_markers=w.shape[0])
    traits = root["traits"][:]
    lines = [f"{i} {i} {a:g} {'NA' if np.isnan(b) else f'{b:g}'}\n" for i, a, b in zip(iid, *traits.T)]
    (tmp_path / "pheno.txt").write_text("FID IID dis gappy\n" + "".join(lines))
    return tmp_path


@pytest.mark.parametrize("pcs", [0, 2])
def test_grm_pcgc_equals_the_moments_pcgc_with_exact_traces(store, exact_traces, gcta_files, pcs):  # noqa: F811
    """Same genotypes (K = W Wᵀ/M), thresholds and covariates (age; with pcs=2 the moments path's PCs, given to
    the GRM's fit as covariates): the same h², var_t and marginal h², to 1e-6."""
    age = store.parent / "age.txt"
    moments = api.fit(store, method="PCGC", prevalence=PREVALENCE, pcs=pcs, qcovar=age, moments=exact_traces,
                      progress=False)
    qcovar = age
    if pcs:
        components = zarr.open_group(store, mode="r")[RHE_GROUP]["pcs"][:]
        qcovar = gcta_files / "qcovar.txt"
        qcovar.write_text("".join(f"{line} {' '.join(f'{x:.17g}' for x in row)}\n"
                                  for line, row in zip(age.read_text().splitlines(), components)))
    grm = api.fit(grm=gcta_files / "k", pheno=gcta_files / "pheno.txt", method="PCGC", prevalence=PREVALENCE, pcs=0,
                  qcovar=qcovar, moments=exact_traces, progress=False)
    assert grm.method == "PCGC" and grm.extra["jackknife_blocks"] == exact_traces.n_blocks
    differences = []
    for streamed, dense in zip(moments.traits, grm.traits):
        assert (dense.name, dense.method, dense.n, dense.case_fraction) == (streamed.name, "PCGC", streamed.n,
                                                                             streamed.case_fraction)
        assert dense.threshold_variance == pytest.approx(streamed.threshold_variance, abs=1e-9)
        differences += [dense.h2 - streamed.h2, dense.h2_marginal - streamed.h2_marginal]
        print(f"{dense.name}: SE, samples' jackknife {dense.h2_se:.4f}, markers' {streamed.h2_se:.4f}")
    print(f"pcs={pcs}: max |GRM − moments| {np.abs(differences).max():.2e}")
    assert np.abs(differences).max() < 1e-6


def test_cli_fits_pcgc_from_a_grm_and_refuses_in_one_line(store, gcta_files, capsys):  # noqa: F811
    out = gcta_files / "fit"
    common = ["--quiet", "fit", "--grm", str(gcta_files / "k"), "--pheno", str(gcta_files / "pheno.txt"), "--method",
              "pcgc", "--prevalence", "0.05", "--pcs", "1", "--jackknife-blocks", "20"]
    assert main([*common, "--out", str(out)]) == 0
    document = json.loads((gcta_files / "fit.json").read_text())
    assert [t["method"] for t in document["traits"]] == ["PCGC", "PCGC"] and document["method"] == "PCGC"
    assert document["jackknife_blocks"] == 20 and "samples" in document["jackknife"]
    assert document["fixed_effects"] == ["intercept", "PC1"] and "risk_model" in document
    hsq = (gcta_files / "fit.dis.hsq").read_text().splitlines()
    assert hsq[1].startswith("V(G)/Vp_L\t") and hsq[-1] == f"n\t{N}"
    capsys.readouterr()
    for extra, words in ((["--bivariate", "dis,gappy"], "--bivariate goes with a STORE under --method pcgc"),
                         (["--jackknife-blocks", "300"], "more than the 270 samples of trait gappy")):
        assert main([*common, *extra, "--out", str(gcta_files / "x")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and words in err, err
        assert not (gcta_files / "x.json").exists()


def test_bad_grm_pcgc_arguments(gcta_files):
    with pytest.raises(ParameterError, match="grm goes with pheno"):
        api.fit(grm=gcta_files / "k", method="PCGC", prevalence=0.1)
    with pytest.raises(ParameterError, match="give their prevalence"):
        api.fit(grm=gcta_files / "k", pheno=gcta_files / "pheno.txt", method="PCGC")
