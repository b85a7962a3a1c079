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


def literal(kinships, X, risk, keep, weights=None):
    """h²_k (K,) from Σ over explicit pairs i ≠ j of the samples ``keep``, A_k = P K_k P with P of all samples;
    with ``weights`` (n,) also (V, Σ_{pairs} w_i w_j A_k A_l) (K, K) over those pairs."""
    P = np.eye(X.shape[0]) - X @ np.linalg.solve(X.T @ X, X.T)
    pairs = ~np.eye(X.shape[0], dtype=bool) & np.outer(keep, keep)
    vv, dd = np.outer(risk.u * risk.z, risk.u * risk.z), np.outer(risk.u**2, risk.u**2)
    A = [P @ K @ P for K in kinships]
    lhs = np.array([[np.sum((dd * a * b)[pairs]) for b in A] for a in A])
    h2 = np.linalg.solve(lhs, [np.sum((vv * a)[pairs]) for a in A])
    if weights is None:
        return h2
    ww = np.outer(weights, weights)
    return h2, lhs, np.array([[np.sum((ww * a * b)[pairs]) for b in A] for a in A])


def test_dense_pcgc_equals_the_literal_sums_and_their_sample_jackknife():
    """Estimates from the literal sums; SEs from the literal refits without each block, less the pairs' noise
    the jackknife counts (each pair's v_i² v_j² A_ij², once per block it touches), plus its true value."""
    rng = np.random.default_rng(5)
    n, blocks = 120, 20
    W = [rng.standard_normal((m, n)) for m in (300, 200)]
    kinships = np.stack([w.T @ w / w.shape[0] for w in W])
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.integers(0, 2, n)])
    y = (rng.random(n) < 0.4).astype(float)
    estimates, risk = pcgc_of_kinships(kinships, y, X=X, prevalence=0.05, n_blocks=blocks, n_markers=[300, 200])
    expected, V, S = literal(kinships, X, risk, np.ones(n, bool), weights=(risk.u * risk.z) ** 2)
    block = np.arange(n) % blocks
    refits = [literal(kinships, X, risk, block != b, weights=(risk.u * risk.z) ** 2) for b in range(blocks)]
    replicates = np.array([r[0] for r in refits])
    spread = replicates - replicates.mean(0)
    jackknife = (blocks - 1) / blocks * spread.T @ spread
    touching = [(V - r[1], S - r[2]) for r in refits]  # V and S over the pairs that touch block b
    touches = (block[:, None] != block[None, :]) + 1.0  # blocks each pair touches
    pairs = ~np.eye(n, dtype=bool)
    P = np.eye(n) - X @ np.linalg.solve(X.T @ X, X.T)
    A = [P @ K @ P for K in kinships]
    vv2 = np.outer((risk.u * risk.z) ** 2, (risk.u * risk.z) ** 2)
    S2 = np.array([[np.sum((vv2 * touches**2 * a * b)[pairs]) for b in A] for a in A])
    inverse = np.linalg.inv(V)
    counted = (blocks - 1) / blocks * (sum(np.linalg.inv(V - Vb) @ (2 * Sb) @ np.linalg.inv(V - Vb)
                                           for Vb, Sb in touching) - inverse @ (2 * S2) @ inverse / blocks)
    values, vectors = np.linalg.eigh(jackknife - counted)
    covariance = (vectors * np.maximum(values, 0)) @ vectors.T + inverse @ (2 * S) @ inverse
    reference = case_probabilities(y, prevalence=0.05, X=X)
    assert np.array_equal(risk.u, reference.u) and risk.var_t > 0
    np.testing.assert_allclose(estimates.h2, expected, rtol=1e-10)
    np.testing.assert_allclose(estimates.h2_se, np.sqrt(np.diag(covariance)), rtol=1e-9)
    assert estimates.h2_total_se == pytest.approx(np.sqrt(covariance.sum()), rel=1e-9)
    assert estimates.h2_marginal == pytest.approx(expected.sum() / (1 + risk.var_t), rel=1e-10)
    assert estimates.n_markers.tolist() == [300, 200]


def test_sample_jackknife_se_matches_the_spread_of_null_studies():
    """Traits drawn afresh on one kinship with no genetic effect: the mean SE is the SD of ĥ² over the studies
    (SE/SD within 10 %, its sampling error about 3 %; the plain jackknife, counting the pairs' noise twice,
    gave a mean square SE 2.07× the variance). The floor at the pairs' noise (the individuals' part, about 0
    here, counts as 0 where estimated below it) makes the mean square 1.12× the variance at 100 blocks."""
    rng = np.random.default_rng(11)
    n, markers, studies = 300, 400, 500
    W = rng.standard_normal((markers, n))
    kinship = (W.T @ W / markers)[None]
    X = np.ones((n, 1))
    fits = [pcgc_of_kinships(kinship, (rng.random(n) < 0.5).astype(float), X=X, prevalence=0.1, n_blocks=100)[0]
            for _ in range(studies)]
    h2 = np.array([f.h2_total for f in fits])
    se = np.array([f.h2_total_se for f in fits])
    assert se.mean() / h2.std(ddof=1) == pytest.approx(1.0, abs=0.10)


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
