"""Bivariate REML against an independent dense computation (Cholesky of the 2n × 2n V) and scipy's optimizers."""
from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

import dense_reference as dense
from conftest import centred_kinship
from dask_h2.io.convert import simulate_to
from dask_h2.greml.bivariate import Shape, fit_bivariate, fit_pair, pair_map
from dask_h2.traits import parse_pairs
from dask_h2.cli import main
from dask_h2.kinship.eigen import eigendecompose
from dask_h2.errors import InputError
from dask_h2.greml.univariate import dense_subset_eigen, rotate
from dask_h2.greml.pair_model import E11, E12, G11, G12, dense_pair_model, eigen_pair_model
from dask_h2.io.reports import LIABILITY_HEADER
from dask_h2.io.simulate import SimulationDesign

N = 150
PHI_POINTS = [(0.5, 0.3, 0.2, 0.5, 0.7, 0.1), (1.0, 0.2, -0.3, 0.4, 0.9, -0.2), (0.0, 0.0, 0.0, 1.0, 1.0, 0.5),
              (0.3, 0.6, 0.424, 0.7, 0.4, 0.0), (-0.05, 0.3, 0.0, 0.8, 0.6, 0.2)]


def dense_model(blocks, traits, common):
    """dense_pair_model of K's blocks (K11, K22, K12), the traits and fixed effects (y1, y2, X1, X2) and the
    samples in common."""
    (K11, K22, K12), (y1, y2, X1, X2) = blocks, traits
    return dense_pair_model(K11=K11, K22=K22, K12=K12, y1=y1, y2=y2, X1=X1, X2=X2, common=common)


@pytest.fixture(scope="module")
def data():
    K = centred_kinship(N, 400, seed=51)
    rng = np.random.default_rng(9)
    X = np.column_stack([np.ones(N), rng.normal(size=N)])
    G, E = np.array([[0.6, 0.3], [0.3, 0.4]]), np.array([[0.4, 0.1], [0.1, 0.6]])
    L = np.linalg.cholesky(np.kron(G, K) + np.kron(E, np.eye(N)))
    Y = (X @ np.array([[1.0, -1.0], [0.5, 0.2]])) + (L @ rng.standard_normal(2 * N)).reshape(2, N).T
    return K, X, Y


def stacked_v(K11, K22, K12, common, phi):
    """V (n₁ + n₂ square) built directly: blocks of K and the identity pairing the common samples."""
    n1, n2 = K11.shape[0], K22.shape[0]
    g11, g22, g12, e11, e22 = phi[:5]
    e12 = phi[5] if len(phi) > 5 else 0.0
    pairing = np.zeros((n1, n2))
    pairing[common[0], common[1]] = 1.0
    return np.block([[g11 * K11 + e11 * np.eye(n1), g12 * K12 + e12 * pairing],
                     [(g12 * K12 + e12 * pairing).T, g22 * K22 + e22 * np.eye(n2)]])


def dense_loglik(K11, K22, K12, common, y1, y2, X1, X2, phi):
    X = np.block([[X1, np.zeros((X1.shape[0], X2.shape[1]))], [np.zeros((X2.shape[0], X1.shape[1])), X2]])
    try:
        return dense.reml_loglik_v(stacked_v(K11, K22, K12, common, phi), np.concatenate([y1, y2]), X)
    except np.linalg.LinAlgError:
        return -np.inf


def same_samples(K, X, Y):
    everyone = np.arange(N)
    return lambda phi: dense_loglik(K, K, K, (everyone, everyone), Y[:, 0], Y[:, 1], X, X, phi)


def eigen_model(K, X, Y):
    eigen = eigendecompose(K.copy())
    Y_rot, X_rot = rotate(eigen.vectors, Y, X=X)
    return eigen_pair_model(s=eigen.values, Y=Y_rot, X=X_rot, raw=Y, raw_X=X)


@pytest.fixture(scope="module")
def split(data):
    """Trait 1 on samples 0..109, trait 2 on 40..149: 70 in common."""
    K, X, Y = data
    first, second = np.arange(110), np.arange(40, N)
    common = (np.arange(40, 110), np.arange(0, 70))
    args = (K[np.ix_(first, first)], K[np.ix_(second, second)], K[np.ix_(first, second)])
    return args, common, (Y[first, 0], Y[second, 1], X[first], X[second])


@pytest.mark.parametrize("phi", PHI_POINTS)
def test_eigenbasis_loglik_equals_the_dense_2n_cholesky(data, phi):
    K, X, Y = data
    pieces = eigen_model(K, X, Y).evaluate(np.array(phi))
    assert pieces.loglik == pytest.approx(same_samples(K, X, Y)(phi), rel=1e-8)


@pytest.mark.parametrize("phi", PHI_POINTS)
def test_dense_path_loglik_on_different_samples_equals_the_dense_cholesky(split, phi):
    blocks, common, traits = split
    model = dense_model(blocks, traits, common)
    assert model.evaluate(np.array(phi)).loglik == pytest.approx(dense_loglik(*blocks, common, *traits, phi), rel=1e-8)


@pytest.mark.parametrize("phi", PHI_POINTS[:2])
def test_score_is_the_gradient_of_the_dense_likelihood(data, phi):
    K, X, Y = data
    reference, step = same_samples(K, X, Y), 1e-6
    numeric = [(reference(np.add(phi, step * e)) - reference(np.subtract(phi, step * e))) / (2 * step)
               for e in np.eye(6)]
    assert eigen_model(K, X, Y).evaluate(np.array(phi)).score == pytest.approx(numeric, rel=1e-5, abs=1e-4)


def test_eigenbasis_and_dense_paths_agree_on_the_same_samples(data):
    K, X, Y = data
    everyone = np.arange(N)
    fast = fit_pair(eigen_model(K, X, Y), names=("a", "b"))
    slow = fit_pair(
        dense_pair_model(K11=K, K22=K, K12=K, y1=Y[:, 0], y2=Y[:, 1], X1=X, X2=X, common=(everyone, everyone)),
        names=("a", "b"),
    )
    assert fast.path == "eigen" and slow.path == "dense"
    assert np.array(fast.vg + fast.ve) == pytest.approx(np.array(slow.vg + slow.ve), rel=1e-6)
    assert fast.logL == pytest.approx(slow.logL, rel=1e-12) and fast.rg_se == pytest.approx(slow.rg_se, rel=1e-6)
    assert fast.lrt_rg0 == pytest.approx(slow.lrt_rg0, rel=1e-6)


def _components(fit):
    return np.array([fit.vg[0][0], fit.vg[1][1], fit.vg[0][1], fit.ve[0][0], fit.ve[1][1], fit.ve[0][1]])


@pytest.mark.slow
def test_fit_and_null_fits_equal_a_general_purpose_optimizer(data):
    K, X, Y = data
    fit = fit_pair(eigen_model(K, X, Y), names=("a", "b"))
    reference = same_samples(K, X, Y)
    start = np.array([0.5, 0.5, 0.0, 0.5, 0.5, 0.0])
    best = dense.maximize_dense(reference, start)
    print(f"\nAI-REML {_components(fit)}\nscipy   {best}")
    assert fit.converged and not fit.boundary
    assert _components(fit) == pytest.approx(best, rel=1e-5)
    assert fit.rg == pytest.approx(best[2] / np.sqrt(best[0] * best[1]), rel=1e-5)
    zero = dense.maximize_dense(lambda t: reference([t[0], t[1], 0.0, t[2], t[3], t[4]]), start[[0, 1, 3, 4, 5]])
    assert fit.logL_rg0 == pytest.approx(reference([zero[0], zero[1], 0.0, *zero[2:]]), abs=1e-8)
    one = dense.maximize_dense(lambda t: reference([t[0] ** 2, t[1] ** 2, t[0] * t[1], t[2], t[3], t[4]]),
                               np.array([0.7, 0.7, 0.5, 0.5, 0.0]))
    assert fit.logL_rg1 == pytest.approx(reference([one[0] ** 2, one[1] ** 2, one[0] * one[1], *one[2:]]), abs=1e-8)
    assert fit.lrt_rg0 == pytest.approx(2 * (fit.logL - fit.logL_rg0)) and fit.lrt_rg0 > 0


@pytest.mark.slow
def test_different_samples_fit_equals_a_general_purpose_optimizer(split):
    blocks, common, traits = split
    fit = fit_pair(dense_model(blocks, traits, common), names=("a", "b"), constrain=False)  # here rG > 1
    best = dense.maximize_dense(lambda phi: dense_loglik(*blocks, common, *traits, phi),
                                np.array([0.5, 0.5, 0.0, 0.5, 0.5, 0.0]))
    assert fit.n == 220 and fit.n_per_trait == [110, 110] and fit.n_common == 70 and fit.residual_covariance
    assert _components(fit) == pytest.approx(best, rel=1e-5, abs=1e-7)


@pytest.mark.slow
def test_no_sample_in_common_drops_the_residual_covariance(data):
    K, X, Y = data
    first, second = np.arange(75), np.arange(75, N)
    blocks = (K[np.ix_(first, first)], K[np.ix_(second, second)], K[np.ix_(first, second)])
    traits = (Y[first, 0], Y[second, 1], X[first], X[second])
    none = (np.zeros(0, int), np.zeros(0, int))
    fit = fit_pair(dense_model(blocks, traits, none), names=("a", "b"), constrain=False)  # here Vg₂ < 0
    best = dense.maximize_dense(lambda t: dense_loglik(*blocks, none, *traits, [*t, 0.0]),
                                np.array([0.5, 0.5, 0.0, 0.5, 0.5]))
    assert not fit.residual_covariance and np.isnan(fit.ve_se[0][1]) and fit.ve[0][1] == 0.0
    assert _components(fit)[:5] == pytest.approx(best, rel=1e-5, abs=1e-7)


@pytest.mark.slow
def test_a_correlation_beyond_one_is_held_at_one(data):
    K, X, _ = data
    rng = np.random.default_rng(3)
    G, E = np.array([[0.15, 0.149], [0.149, 0.15]]), np.array([[0.8, 0.0], [0.0, 0.8]])
    found = None
    for _ in range(40):  # a draw whose unconstrained rG exceeds 1
        Y = (np.linalg.cholesky(np.kron(G, K) + np.kron(E, np.eye(N))) @ rng.standard_normal(2 * N)).reshape(2, N).T
        free = fit_pair(eigen_model(K, X, Y), names=("a", "b"), constrain=False)
        if free.rg > 1.0:
            found = Y
            break
    assert found is not None
    held = fit_pair(eigen_model(K, X, found), names=("a", "b"))
    assert held.rg == pytest.approx(1.0, abs=1e-12) and held.boundary and held.lrt_rg1 == 0.0
    assert held.logL == pytest.approx(held.logL_rg1, abs=1e-9) and held.logL <= free.logL + 1e-9
    reference = same_samples(K, X, found)
    one = dense.maximize_dense(lambda t: reference([t[0] ** 2, t[1] ** 2, t[0] * t[1], t[2], t[3], t[4]]),
                               np.array([0.4, 0.4, 0.8, 0.8, 0.0]))
    assert held.logL == pytest.approx(reference([one[0] ** 2, one[1] ** 2, one[0] * one[1], *one[2:]]), abs=1e-7)


def test_rank_one_map_and_its_derivatives():
    mapping = pair_map(Shape(kind="rank1", sign=-1.0), Shape(kind="free"), n_components=6, constrain=True)
    theta = np.array([0.6, 0.8, 0.3, 0.4, 0.05])
    phi = mapping.phi(theta)
    assert phi == pytest.approx([0.36, 0.64, -0.48, 0.3, 0.4, 0.05])
    numeric = np.array([(mapping.phi(theta + 1e-7 * e) - mapping.phi(theta - 1e-7 * e)) / 2e-7 for e in np.eye(5)]).T
    assert mapping.jacobian(theta) == pytest.approx(numeric, abs=1e-8)
    assert list(mapping.lower) == [0.0, 0.0, 0.0, 0.0, -np.inf]
    assert (G11, G12, E11, E12) == (0, 2, 3, 5)


def test_missing_values_choose_the_path(data, caplog):
    caplog.set_level("INFO", logger="dask_h2")
    K, X, Y = data
    eigen = eigendecompose(K.copy())
    Y_nan = Y.copy()
    Y_nan[:5] = np.nan  # both traits missing on the same samples: eigenbasis of the rest
    (same,) = fit_bivariate(
        eigen,
        Y_nan,
        names=["a", "b"],
        pairs=[(0, 1)],
        X=X,
        columns=["intercept", "x"],
        subset_eigen=dense_subset_eigen(K),
        kinship_block=lambda r, c: K[np.ix_(r, c)],
    )
    (direct,) = [fit_pair(eigen_model(K[5:, 5:], X[5:], Y[5:]), names=("a", "b"))]
    assert same.path == "eigen" and same.n_per_trait == [N - 5, N - 5]
    assert same.logL == pytest.approx(direct.logL, rel=1e-10)
    Y_nan[5:20, 1] = np.nan
    (apart,) = fit_bivariate(
        eigen,
        Y_nan,
        names=["a", "b"],
        pairs=[(0, 1)],
        X=X,
        columns=["intercept", "x"],
        subset_eigen=dense_subset_eigen(K),
        kinship_block=lambda r, c: K[np.ix_(r, c)],
    )
    assert apart.path == "dense" and apart.n_per_trait == [N - 5, N - 20] and apart.n_common == N - 20
    (notice,) = [r.getMessage() for r in caplog.records if "dense bivariate REML" in r.getMessage()]
    assert notice.startswith(f"traits a and b are observed on different samples: the dense bivariate REML factors V "
                             f"({2 * N - 25} x {2 * N - 25}) at each of about 30-50 steps") \
        and f"the {N - 20} samples with both traits alone fit in seconds" in notice


@pytest.mark.parametrize("spec, message", [("a,c", "no trait named 'c'"), ("a,a", "the same trait twice"),
                                           ("a", "expected two trait names")])
def test_bad_pairs(spec, message):
    with pytest.raises(InputError, match=message):
        parse_pairs(spec, ["a", "b"])
    assert parse_pairs("all", ["a", "b", "c"]) == [(0, 1), (0, 2), (1, 2)]


def test_too_few_samples_in_common_without_the_dense_path(data, monkeypatch):
    K, X, Y = data
    import dask_h2.greml.bivariate as bivariate

    monkeypatch.setattr(bivariate, "DENSE_MAX_OBSERVATIONS", 100)
    Y_nan = Y.copy()
    Y_nan[:145, 1] = np.nan
    Y_nan[146:, 0] = np.nan
    with pytest.raises(InputError, match="fewer than 10 samples with both traits"):
        fit_bivariate(
            eigendecompose(K.copy()),
            Y_nan,
            names=["a", "b"],
            pairs=[(0, 1)],
            X=X[:, :1],
            columns=["intercept"],
            subset_eigen=dense_subset_eigen(K),
            kinship_block=lambda r, c: K[np.ix_(r, c)],
        )
    Y_nan = Y.copy()
    Y_nan[:60, 1] = np.nan
    with pytest.warns(RuntimeWarning, match="fitted on the 90 samples with both traits"):
        (fit,) = fit_bivariate(
            eigendecompose(K.copy()),
            Y_nan,
            names=["a", "b"],
            pairs=[(0, 1)],
            X=X,
            columns=["intercept", "x"],
            subset_eigen=dense_subset_eigen(K),
            kinship_block=lambda r, c: K[np.ix_(r, c)],
        )
    assert fit.path == "eigen" and fit.n_per_trait == [90, 90]


def test_iteration_limit_is_flagged(data):
    K, X, Y = data
    with pytest.warns(RuntimeWarning, match="did not converge in 1 iterations"):
        fit = fit_pair(eigen_model(K, X, Y), names=("a", "b"), max_iter=1)
    assert not fit.converged and np.isfinite(fit.rg)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A simulated store with three traits: the third a 0/1 disease, missing on some samples."""
    folder = tmp_path_factory.mktemp("bivariate")
    path = simulate_to(
        folder / "s.zarr", SimulationDesign(n_samples=240, n_markers=1500, h2=(0.6, 0.4, 0.5), seed=13), progress=False
    )
    root = zarr.open_group(path, mode="r+")
    traits = root["traits"][:]
    traits[:, 2] = (traits[:, 2] > np.quantile(traits[:, 2], 0.7)).astype(float)
    traits[:30, 2] = np.nan
    root["traits"][:] = traits
    return folder, path


@pytest.mark.slow
def test_cli_bivariate_json_and_gcta_hsq(store, tmp_path):
    _, path = store
    assert main(["--quiet", "fit", str(path), "--bivariate", "all", "--pcs", "2", "--prevalence", "NA,NA,0.05",
                 "--out", str(tmp_path / "b")]) == 0
    report = json.loads((tmp_path / "b.json").read_text())
    assert [p["traits"] for p in report["pairs"]] == [["trait1", "trait2"], ["trait1", "trait3"], ["trait2", "trait3"]]
    first, with_disease = report["pairs"][0], report["pairs"][1]
    for key in ("traits", "vg", "ve", "rg", "rg_se", "logL", "lrt_rg0", "pval_rg0", "n", "lrt_rg1", "lrt_rg_minus1"):
        assert key in first
    assert np.array(first["vg"]).shape == (2, 2) and first["path"] == "eigen" and first["n"] == 480
    assert "h2_liability" not in first and with_disease["h2_liability"][0] is None
    assert with_disease["path"] == "dense" and with_disease["n_per_trait"] == [240, 210]
    assert with_disease["case_fraction"][1] == pytest.approx(
        np.mean(zarr.open_group(path, mode="r")["traits"][30:, 2]), abs=1e-12)
    hsq = (tmp_path / "b.trait1.trait3.hsq").read_text().splitlines()
    assert [line.split("\t")[0] for line in hsq] == [
        "Source", "V(G)_tr1", "V(G)_tr2", "C(G)_tr12", "V(e)_tr1", "V(e)_tr2", "C(e)_tr12", "Vp_tr1", "Vp_tr2",
        "V(G)/Vp_tr1", "V(G)/Vp_tr2", LIABILITY_HEADER,
        hsq[12], "V(G)/Vp_tr2_L", "rG", "logL", "logL0", "LRT", "df", "Pval", "n"]
    assert hsq[12].startswith("(Proportion of cases in the sample = ") and hsq[12].endswith(" for disease 2)")
    assert hsq[16] == f"logL0\t{with_disease['logL_rg0']:.3f} (when rG fixed at 0.000)"
    assert hsq[19] == f"Pval\t{0.5 * with_disease['pval_rg0']:.4e} (one-tailed test)" and hsq[20] == "n\t450"


def test_cli_bivariate_from_a_gcta_grm_equals_the_store(store, tmp_path):
    folder, path = store
    main(["--quiet", "grm", str(path), "--out-gcta", str(tmp_path / "k")])
    root = zarr.open_group(path, mode="r")
    (tmp_path / "p.txt").write_text("FID IID a b c\n" + "".join(
        f"{i} {i} {' '.join('NA' if np.isnan(v) else repr(float(v)) for v in row)}\n"
        for i, row in zip(root["sample_id"][:], root["traits"][:])))
    assert main(["--quiet", "fit", "--grm", str(tmp_path / "k"), "--pheno", str(tmp_path / "p.txt"), "--bivariate",
                 "a,b", "--pcs", "0", "--out", str(tmp_path / "g")]) == 0
    assert main(["--quiet", "fit", str(path), "--bivariate", "trait1,trait2", "--pcs", "0",
                 "--out", str(tmp_path / "s")]) == 0
    gcta, ours = (json.loads((tmp_path / f"{name}.json").read_text())["pairs"][0] for name in ("g", "s"))
    assert gcta["rg"] == pytest.approx(ours["rg"], abs=1e-5) and gcta["logL"] == pytest.approx(ours["logL"], abs=1e-3)


@pytest.mark.parametrize("argv, message", [
    (["--bivariate", "trait1,height"], "no trait named 'height'"),
    (["--bivariate", "trait2,trait2"], "the same trait twice"),
    (["--bivariate", "trait1,trait2", "--method", "ml"], "fitted by REML"),
    (["--bivariate", "trait1,trait2", "--mgrm"], "--bivariate takes one GRM"),
])
def test_cli_bivariate_bad_input(store, tmp_path, capsys, argv, message):
    _, path = store
    assert main(["--quiet", "fit", str(path), *argv, "--out", str(tmp_path / "x")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("dask-h2: error: ") and message in error and "\n" not in error
    assert not (tmp_path / "x.json").exists()


def _numeric_hessian(function, point, step=1e-4):
    point = np.asarray(point, dtype=float)
    size = point.size
    hessian = np.empty((size, size))
    for i in range(size):
        for j in range(size):
            e_i, e_j = step * np.eye(size)[i], step * np.eye(size)[j]
            hessian[i, j] = (function(point + e_i + e_j) - function(point + e_i - e_j) - function(point - e_i + e_j)
                             + function(point - e_i - e_j)) / (4 * step * step)
    return hessian


@pytest.mark.slow
@pytest.mark.parametrize("path", ["eigen", "dense"])
def test_observed_information_is_minus_the_hessian_of_the_dense_likelihood(data, split, path):
    K, X, Y = data
    phi = np.array(PHI_POINTS[0])
    if path == "eigen":
        model, reference = eigen_model(K, X, Y), same_samples(K, X, Y)
    else:
        blocks, common, traits = split
        model = dense_model(blocks, traits, common)
        reference = lambda v: dense_loglik(*blocks, common, *traits, v)  # noqa: E731
    information = model.evaluate(phi, fisher=True).information()
    assert information == pytest.approx(-_numeric_hessian(reference, phi), rel=1e-4, abs=1e-2)


@pytest.mark.parametrize("second, slope", [(lambda a, x: a.copy(), 1.0), (lambda a, x: 2 * a + 3, 2.0),
                                           (lambda a, x: -0.5 * a, -0.5), (lambda a, x: a + 4 * x, 1.0)])
def test_collinear_traits_are_refused_as_such(data, second, slope):
    """A pair of traits that are one linear function of the other after the fixed effects (a copy, 2a+3, -a/2,
    a plus a covariate) is not estimable: rG = rE = ±1 by construction. Said in one line, never fitted."""
    K, X, Y = data
    a = Y[:, 0]
    traits = np.column_stack([a, second(a, X[:, 1])])
    with pytest.raises(InputError) as raised:
        fit_bivariate(eigendecompose(K), traits, names=["a", "b"], pairs=[(0, 1)], X=X, columns=["intercept", "x"])
    text = str(raised.value)
    assert "\n" not in text and f"pair a,b: the traits are collinear on their common samples (b = {slope:g} x a" \
        in text and f"rG = rE = {np.sign(slope):+.0f}" in text


def test_a_collinear_pair_among_others_is_left_out_with_a_warning(data):
    K, X, Y = data
    traits = np.column_stack([Y, 2 * Y[:, 0] + 3])
    with pytest.warns(RuntimeWarning, match="pair t1,copy: the traits are collinear"):
        fits = fit_bivariate(eigendecompose(K), traits, names=["t1", "t2", "copy"],
                             pairs=parse_pairs("all", ["t1", "t2", "copy"]), X=X, columns=["intercept", "x"])
    assert [fit.traits for fit in fits] == [("t1", "t2"), ("t2", "copy")]
