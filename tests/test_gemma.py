"""Agreement with GEMMA (the real binary, Debian package ``gemma``) on the same .bed and the same GRM(s):
the univariate REML null model, the multivariate one (mvLMM, -lmm -n 1 2) and several kinships (-mk -vc 2).

GEMMA's null-model REML reports PVE = tr(K)/n · σ²g / (tr(K)/n · σ²g + σ²e), which scales
σ²g by the mean of diag(K); dask-h2's h² = σ²g / (σ²g + σ²e). With m = mean diag(K):
PVE = m h² / (m h² + 1 − h²) and SE(PVE) = m / (m h² + 1 − h²)² · SE(h²) (delta method;
GEMMA's own SE is the same transformation of the REML curvature in λ = σ²g/σ²e). With
K / m passed instead, PVE = h² exactly. GEMMA prints 6 significant digits, so agreement is
checked to 2e-6 (the issue asks for 1e-4; the differences seen are ≤ 5e-7, its rounding).
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from bed_reader import to_bed

from dask_h2 import api
from dask_h2.greml.bivariate import fit_bivariate
from dask_h2.kinship.eigen import eigendecompose
from dask_h2.greml.univariate import fit_traits
from dask_h2.io.simulate import SimulationDesign, simulate

GEMMA = shutil.which("gemma")
pytestmark = pytest.mark.skipif(GEMMA is None, reason="GEMMA is not installed (Debian: apt-get install gemma)")


def gemma_pve(h2: float, h2_se: float, mean_diagonal: float) -> tuple[float, float]:
    """dask-h2's (h², SE) on GEMMA's PVE scale for a K whose diagonal averages ``mean_diagonal``."""
    denominator = mean_diagonal * h2 + 1.0 - h2
    return mean_diagonal * h2 / denominator, mean_diagonal / denominator**2 * h2_se


def run_gemma(folder, bed_prefix, K: np.ndarray, y: np.ndarray, covariates: np.ndarray | None, name: str):
    """(PVE, SE(PVE)) of GEMMA's REML null model with ``-k K``; ``covariates`` (n, c) include the intercept."""
    np.savetxt(folder / f"{name}.K.txt", K, fmt="%.17g", delimiter="\t")
    np.savetxt(folder / f"{name}.y.txt", y, fmt="%.17g")
    command = [
        GEMMA,
        "-bfile",
        str(bed_prefix),
        "-p",
        str(folder / f"{name}.y.txt"),
        "-k",
        str(folder / f"{name}.K.txt"),
        "-lmm",
        "1",
        "-o",
        name,
        "-outdir",
        str(folder / "gemma"),
    ]
    if covariates is not None:
        np.savetxt(folder / f"{name}.c.txt", covariates, fmt="%.17g", delimiter="\t")
        command += ["-c", str(folder / f"{name}.c.txt")]
    subprocess.run(command, check=True, capture_output=True, cwd=folder)
    log = (folder / "gemma" / f"{name}.log.txt").read_text()
    pve = float(re.search(r"## pve estimate in the null model = (\S+)", log).group(1))
    se = float(re.search(r"## se\(pve\) in the null model = (\S+)", log).group(1))
    return pve, se


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    """A simulated data set exported to PLINK .bed, converted by dask-h2, with its GRM."""
    folder = tmp_path_factory.mktemp("gemma")
    source = simulate(SimulationDesign(n_samples=400, n_markers=3000, h2=(0.5,), seed=11))
    dosage = source.read_block(0, source.n_variants).T.astype(np.float64)
    dosage[dosage < 0] = np.nan
    traits, _ = source.phenotypes()
    iid = list(source.sample_id)
    to_bed(folder / "sim.bed", dosage, properties={"iid": iid, "fid": iid, "sid": list(source.variant_id)})
    x = np.random.default_rng(1).normal(size=400) + 0.3 * traits[:, 0]
    (folder / "pheno.txt").write_text("".join(f"{i} {i} {float(v)!r}\n" for i, v in zip(iid, traits[:, 0])))
    store = api.convert(folder / "sim.bed", folder / "sim.zarr", pheno=folder / "pheno.txt", progress=False)
    (folder / "qcovar.txt").write_text("".join(f"{i} {i} {float(v)!r}\n" for i, v in zip(iid, x)))
    K = api.grm(store, progress=False).kinship[:]
    return folder, store, K, traits[:, 0], x


def test_reml_pve_and_se_agree_with_gemma(bed):
    folder, store, K, y, _ = bed
    (fit,) = api.fit(store, method="REML", pcs=0, progress=False).traits
    mean_diagonal = float(np.mean(np.diag(K)))
    assert abs(mean_diagonal - 1.0) > 1e-3  # the two definitions differ here, so the conversion is exercised
    pve, se = run_gemma(folder, folder / "sim", K, y, None, "plain")
    ours = gemma_pve(fit.h2, fit.h2_se, mean_diagonal)
    print(f"\nGEMMA PVE {pve} SE {se}; dask-h2 on GEMMA's scale {ours[0]:.6f} SE {ours[1]:.6f}; h2 {fit.h2:.6f}")
    assert ours == pytest.approx((pve, se), abs=2e-6)
    assert abs(fit.h2 - pve) > 1e-4  # and the definition difference is real


def test_pve_is_h2_when_k_is_scaled_to_mean_diagonal_1(bed):
    folder, _, K, y, _ = bed
    scaled = K / np.mean(np.diag(K))
    (fit,) = fit_traits(eigendecompose(scaled.copy()), y, names=["y"], method="REML", pcs=0)
    pve, se = run_gemma(folder, folder / "sim", scaled, y, None, "scaled")
    assert (fit.h2, fit.h2_se) == pytest.approx((pve, se), abs=2e-6)


def test_reml_with_a_covariate_agrees_with_gemma(bed):
    folder, store, K, y, x = bed
    (fit,) = api.fit(store, method="REML", pcs=0, qcovar=folder / "qcovar.txt", progress=False).traits
    pve, se = run_gemma(folder, folder / "sim", K, y, np.column_stack([np.ones_like(x), x]), "covariate")
    assert gemma_pve(fit.h2, fit.h2_se, float(np.mean(np.diag(K)))) == pytest.approx((pve, se), abs=2e-6)


def printed(value: float, digits: int = 6) -> float:
    """Half a unit in the last of ``digits`` significant digits of ``value``: what GEMMA's printing rounds away."""
    return 0.5 * 10.0 ** (np.floor(np.log10(abs(value))) - digits + 1)


def run_gemma_vc(folder, kinships: np.ndarray, y: np.ndarray, covariates: np.ndarray, name: str) -> dict:
    """GEMMA's REML (-vc 2) with several kinships (-mk): its printed σ², SE(σ²), PVE and SE(PVE)."""
    paths = []
    for k, K in enumerate(kinships):
        np.savetxt(folder / f"{name}.K{k}.txt", K, fmt="%.17g", delimiter="\t")
        paths.append(str(folder / f"{name}.K{k}.txt"))
    (folder / f"{name}.mk.txt").write_text("\n".join(paths) + "\n")
    np.savetxt(folder / f"{name}.y.txt", y, fmt="%.17g")
    np.savetxt(folder / f"{name}.c.txt", covariates, fmt="%.17g", delimiter="\t")
    subprocess.run([GEMMA, "-p", str(folder / f"{name}.y.txt"), "-mk", str(folder / f"{name}.mk.txt"), "-vc", "2",
                    "-noconstrain", "-c", str(folder / f"{name}.c.txt"), "-o", name, "-outdir", str(folder / "gemma")],
                   check=True, capture_output=True, cwd=folder)
    log = (folder / "gemma" / f"{name}.log.txt").read_text()
    fields = {
        "sigma2": "sigma2 estimates",
        "sigma2_se": r"se\(sigma2\)",
        "pve": "pve estimates",
        "pve_se": r"se\(pve\)",
    }
    return {key: np.array(re.search(rf"## {label} = (.*)", log).group(1).split(), dtype=float)
            for key, label in fields.items()}


def test_several_kinships_agree_with_gemma_vc(bed):
    """GEMMA -vc 2 stops when its gradient falls below 1e-3 (fixed): on y/100 that is 1e-7 on y's scale,
    far inside its printed 6 digits, so y is passed scaled and its σ² scaled back by 100²
    (-noconstrain: σ² itself is GEMMA's parameter; the estimate here is interior)."""
    folder, store, _, y, x = bed
    from dask_h2 import api

    parts = api.grm(store, partition="maf:0.0,0.15,0.3,0.5", progress=False)
    kinships = parts.kinships[:]
    (fit,) = api.fit(store, components=True, qcovar=folder / "qcovar.txt", pcs=0, progress=False).traits
    gemma = run_gemma_vc(folder, kinships, y / 100.0, np.column_stack([np.ones_like(x), x]), "vc")
    ours = np.array([c.sigma2 for c in fit.components] + [fit.sigma_e2])
    ours_se = np.array([c.sigma2_se for c in fit.components] + [fit.sigma_e2_se])
    m = np.array([np.mean(np.diag(K)) for K in kinships])  # GEMMA's PVE scales σ²_k by mean diag(K_k)
    scaled = m * ours[:-1] / (m @ ours[:-1] + ours[-1])
    print(f"\nGEMMA sigma2 {gemma['sigma2'] * 1e4}, dask-h2 {ours}")
    assert fit.converged and not fit.boundary
    for value, expected in ((ours, gemma["sigma2"] * 1e4), (ours_se, gemma["sigma2_se"] * 1e4), (scaled, gemma["pve"])):
        assert np.all(np.abs(value - expected) <= [printed(v) + 1e-12 for v in expected]), (value, expected)


def run_gemma_mvlmm(folder, bed_prefix, K: np.ndarray, Y: np.ndarray, name: str) -> dict:
    """GEMMA's mvLMM null-model REML (-lmm 1 -n 1 2): its printed Vg and Ve (2, 2). The null model
    does not depend on the markers tested, so only the first few are (-snps), to save time."""
    np.savetxt(folder / f"{name}.K.txt", K, fmt="%.17g", delimiter="\t")
    np.savetxt(folder / f"{name}.y.txt", Y, fmt="%.17g", delimiter="\t")
    snps = [line.split()[1] for line in Path(f"{bed_prefix}.bim").read_text().splitlines()[:20]]
    (folder / f"{name}.snps.txt").write_text("\n".join(snps) + "\n")
    subprocess.run(
        [
            GEMMA,
            "-bfile",
            str(bed_prefix),
            "-p",
            str(folder / f"{name}.y.txt"),
            "-k",
            str(folder / f"{name}.K.txt"),
            "-lmm",
            "1",
            "-n",
            "1",
            "2",
            "-snps",
            str(folder / f"{name}.snps.txt"),
            "-o",
            name,
            "-outdir",
            str(folder / "gemma"),
        ],
        check=True,
        capture_output=True,
        cwd=folder,
    )
    log = (folder / "gemma" / f"{name}.log.txt").read_text()
    matrices = {}
    for key in ("Vg", "Ve"):
        block = re.search(rf"## REMLE estimate for {key} in the null model: \n(.*)\n(.*)\n", log)
        (a,), (c, b) = (np.array(block.group(i).split(), dtype=float) for i in (1, 2))
        matrices[key] = np.array([[a, c], [c, b]])
    return matrices


def test_bivariate_agrees_with_gemma_mvlmm(bed):
    folder, _, K, y, _ = bed
    rng = np.random.default_rng(2)
    values, vectors = np.linalg.eigh(K)
    genetic = vectors @ (np.sqrt(np.clip(values, 0.0, None)) * rng.standard_normal(y.size))
    Y = np.column_stack([y, 0.4 * y + 0.5 * genetic + 0.8 * rng.standard_normal(y.size)])
    (pair,) = fit_bivariate(
        eigendecompose(K.copy()),
        Y,
        names=["y1", "y2"],
        pairs=[(0, 1)],
        X=np.ones((y.size, 1)),
        columns=["intercept"],
        constrain=False,
    )
    gemma = run_gemma_mvlmm(folder, folder / "sim", K, Y, "mv")
    print(f"\nGEMMA Vg {gemma['Vg'].ravel()} Ve {gemma['Ve'].ravel()}")
    print(f"dask-h2 Vg {np.ravel(pair.vg)} Ve {np.ravel(pair.ve)}")
    assert pair.converged and pair.path == "eigen"
    for ours, theirs in ((np.array(pair.vg), gemma["Vg"]), (np.array(pair.ve), gemma["Ve"])):
        assert np.all(np.abs(ours - theirs) <= np.vectorize(printed)(theirs) + 1e-12), (ours, theirs)
