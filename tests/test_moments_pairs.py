"""Genetic correlation on the moments path (``method="RHE", bivariate=...``) against a dense HE-bivariate
computation (GCTA's ``--HEreg-bivar`` normal equations with the diagonal and the residual row, on dense
P K_k P), with exact traces, and against the exact path's bivariate REML on the same data."""
from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

from dask_h2 import api
from dask_h2.cli import main
from dask_h2.errors import InputError
from dask_h2.io.convert import simulate_to
from dask_h2.io.simulate import SimulationDesign
from dask_h2.kinship.pcs import RHE_GROUP
from dask_h2.store import write_traits
from test_pcgc import exact_traces  # noqa: F401 (a fixture)
from test_rhe import M, N, standardized


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Three correlated traits: ``a`` on every sample, ``b`` with a fifth missing, ``c`` with another fifth."""
    path = tmp_path_factory.mktemp("pairs") / "sim.zarr"
    simulate_to(path, SimulationDesign(n_samples=N, n_markers=M, h2=(0.6, 0.5, 0.4), seed=31), progress=False)
    root = zarr.open_group(path, mode="r+")
    traits = root["traits"][:]
    traits[:, 1] += 0.7 * traits[:, 0]
    traits[:, 2] -= 0.5 * traits[:, 1]
    traits[np.arange(N) % 5 == 1, 1] = np.nan
    traits[np.arange(N) % 5 == 2, 2] = np.nan
    write_traits(root, traits, trait_name=np.array(["a", "b", "c"], dtype=object))
    return path


def dense_pair(w, component, y1, y2, X, block):
    """{GCTA .hsq name: (value, SE)} of the HE-bivariate moments fit on the samples with both traits, dense:
    lhs tr(P K_k P K_l), tr(P K_k), n − c; rhs y₁ᵀP K_k P y₂ and y₁ᵀP y₂; jackknife by refitting without
    each block, plus the traits' scale terms (v₁, v₂, v₁₂) of :mod:`dask_h2.moments.pairs`."""
    both = ~np.isnan(y1) & ~np.isnan(y2)
    y1, y2, X, w = y1[both], y2[both], X[both], w[:, both]
    n, c = X.shape
    P = np.eye(n) - X @ np.linalg.solve(X.T @ X, X.T)
    size = component.max() + 1

    def systems(keep):
        kinships = [w[(component == k) & keep].T @ w[(component == k) & keep] / ((component == k) & keep).sum()
                    for k in range(size)]
        lhs = np.empty((size + 1, size + 1))
        for k in range(size):
            for l in range(size):
                lhs[k, l] = np.trace(P @ kinships[k] @ P @ kinships[l])
            lhs[k, size] = lhs[size, k] = np.trace(P @ kinships[k])
        lhs[size, size] = n - c

        def rhs(a, b):
            return np.array([a @ P @ K @ P @ b for K in kinships] + [a @ P @ b])

        return lhs, [np.linalg.solve(lhs, rhs(a, b)) for a, b in ((y1, y1), (y2, y2), (y1, y2))]

    def derived(s1, s2, s12):
        vg1, vg2, cg = s1[:-1].sum(), s2[:-1].sum(), s12[:-1].sum()
        with np.errstate(invalid="ignore"):
            return np.array([vg1, vg2, cg, s1[-1], s2[-1], s12[-1], vg1 + s1[-1], vg2 + s2[-1], vg1 / (vg1 + s1[-1]),
                             vg2 / (vg2 + s2[-1]), cg / np.sqrt(vg1 * vg2), s12[-1] / np.sqrt(s1[-1] * s2[-1])])

    lhs, (s1, s2, s12) = systems(np.ones(w.shape[0], bool))
    values = derived(s1, s2, s12)
    replicates = np.array([derived(*systems(block != j)[1]) for j in np.unique(block)])
    jackknife = np.sqrt((len(replicates) - 1) / len(replicates) * np.sum((replicates - replicates.mean(0)) ** 2, 0))
    q1, q2 = y1 @ P @ y1, y2 @ P @ y2
    v1, v2, v12 = 2 * s1 @ lhs @ s1 / q1**2, 2 * s2 @ lhs @ s2 / q2**2, 2 * s12 @ lhs @ s12 / (q1 * q2)
    vc = (v1 + v2 + 2 * v12) / 4
    scale = np.array([v1, v2, vc, v1, v2, vc, v1, v2, 0, 0, 0, 0])
    names = ["V(G)_tr1", "V(G)_tr2", "C(G)_tr12", "V(e)_tr1", "V(e)_tr2", "C(e)_tr12", "Vp_tr1", "Vp_tr2",
             "V(G)/Vp_tr1", "V(G)/Vp_tr2", "rG", "rE"]
    with np.errstate(invalid="ignore"):  # a replicate with V(G) < 0 has no rG: its SE is NaN, as the streamed one
        return dict(zip(names, zip(values, np.sqrt(jackknife**2 + scale * values**2)))), int(both.sum())


def streamed(pair):
    """The same names from a :class:`PairFit`."""
    return {"V(G)_tr1": (pair.vg[0][0], pair.vg_se[0][0]), "V(G)_tr2": (pair.vg[1][1], pair.vg_se[1][1]),
            "C(G)_tr12": (pair.vg[0][1], pair.vg_se[0][1]), "V(e)_tr1": (pair.ve[0][0], pair.ve_se[0][0]),
            "V(e)_tr2": (pair.ve[1][1], pair.ve_se[1][1]), "C(e)_tr12": (pair.ve[0][1], pair.ve_se[0][1]),
            "Vp_tr1": (pair.vp[0], pair.vp_se[0]), "Vp_tr2": (pair.vp[1], pair.vp_se[1]),
            "V(G)/Vp_tr1": (pair.h2[0], pair.h2_se[0]), "V(G)/Vp_tr2": (pair.h2[1], pair.h2_se[1]),
            "rG": (pair.rg, pair.rg_se)}


@pytest.mark.parametrize("partition, pcs", [(None, 0), ("maf:0,0.2,0.5", 5)])
def test_every_pair_equals_the_dense_he_bivariate_fit_with_exact_traces(store, exact_traces, partition, pcs):  # noqa: F811
    report = api.fit(store, method="RHE", bivariate="all", pcs=pcs, partition=partition, moments=exact_traces,
                     progress=False)
    w, maf, block = standardized(store)
    component = (maf >= 0.2).astype(int) if partition else np.zeros(maf.size, dtype=int)
    root = zarr.open_group(store, mode="r")
    X = np.hstack([np.ones((N, 1))] + ([root[RHE_GROUP]["pcs"][:]] if pcs else []))
    traits = root["traits"][:]
    assert [p.traits for p in report.pairs] == [("a", "b"), ("a", "c"), ("b", "c")]
    assert [t.name for t in report.traits] == ["a", "b", "c"]  # and every trait on its own samples
    for pair, (i, j) in zip(report.pairs, [(0, 1), (0, 2), (1, 2)]):
        expected, common = dense_pair(w, component, traits[:, i], traits[:, j], X, block)
        for name, (value, se) in streamed(pair).items():
            assert value == pytest.approx(expected[name][0], rel=1e-5, abs=1e-7, nan_ok=True), name
            assert se == pytest.approx(expected[name][1], rel=1e-5, abs=1e-7, nan_ok=True), name  # NaN: a V(G) < 0
        assert pair.re == pytest.approx(expected["rE"][0], rel=1e-5, nan_ok=True)
        assert pair.n_common == common and pair.n == 2 * common and pair.method == "RHE"
        assert len(pair.components) == (2 if partition else 0)
    a_b = report.pairs[0]
    assert a_b.rg > 0.3 and np.isfinite(a_b.rg_se)  # b = its own genetics + 0.7 a


def test_moments_rg_agrees_with_bivariate_reml_within_its_se(store):
    """Same samples and fixed effects (the PCs absorb the simulation's three populations, which bias both)."""
    moments = api.fit(store, method="RHE", bivariate="a,b", pcs=5, progress=False).pairs[0]
    reml = api.fit(store, method="REML", bivariate="a,b", pcs=5, progress=False).pairs[0]
    assert reml.n_common == moments.n_common
    assert abs(moments.rg - reml.rg) < 2 * moments.rg_se
    assert abs(moments.h2[0] - reml.h2[0]) < 2 * moments.h2_se[0]


def test_cli_writes_the_pairs_hsq_and_json(store, tmp_path):
    out = tmp_path / "fit"
    assert main(["--quiet", "fit", str(store), "--method", "rhe", "--bivariate", "a,c", "--pcs", "0",
                 "--jackknife-blocks", "20", "--out", str(out)]) == 0
    document = json.loads((tmp_path / "fit.json").read_text())
    (pair,) = document["pairs"]
    assert pair["traits"] == ["a", "c"] and pair["path"] == "moments" and "logL" not in pair
    hsq = (tmp_path / "fit.a.c.hsq").read_text().splitlines()
    assert hsq[:2] == ["Source\tVariance\tSE", f"V(G)_tr1\t{pair['vg'][0][0]:.6f}\t{pair['vg_se'][0][0]:.6f}"]
    assert f"rG\t{pair['rg']:.6f}\t{pair['rg_se']:.6f}" in hsq and hsq[-1] == f"n\t{pair['n']}"
    assert "fit.a.c.hsq" in document["outputs"] and "fit.a.hsq" in document["outputs"]


def test_pair_without_samples_in_common_is_refused(tmp_path):
    path = tmp_path / "apart.zarr"
    simulate_to(path, SimulationDesign(n_samples=80, n_markers=300, h2=(0.5, 0.5), seed=3), progress=False)
    root = zarr.open_group(path, mode="r+")
    traits = root["traits"][:]
    traits[:40, 0] = np.nan
    traits[40:, 1] = np.nan
    write_traits(root, traits, trait_name=np.array(["x", "y"], dtype=object))
    with pytest.raises(InputError, match="traits x and y: 0 samples with both traits and every covariate"):
        api.fit(path, method="RHE", bivariate="x,y", pcs=0, progress=False)
