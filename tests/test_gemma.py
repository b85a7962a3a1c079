"""Agreement with GEMMA (the real binary, Debian package ``gemma``) on the same .bed and the same GRM.

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

import numpy as np
import pytest
from bed_reader import to_bed

from dask_h2 import api
from dask_h2.eigen import eigendecompose
from dask_h2.fit import fit_traits
from dask_h2.simulate import SimulationDesign, simulate

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
    command = [GEMMA, "-bfile", str(bed_prefix), "-p", str(folder / f"{name}.y.txt"), "-k", str(folder / f"{name}.K.txt"),
               "-lmm", "1", "-o", name, "-outdir", str(folder / "gemma")]
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
    source = simulate(SimulationDesign(400, 3000, (0.5,), seed=11))
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
    (fit,) = api.fit(store, "REML", pcs=0, progress=False).traits
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
    (fit,) = fit_traits(eigendecompose(scaled.copy()), y, ["y"], "REML", pcs=0)
    pve, se = run_gemma(folder, folder / "sim", scaled, y, None, "scaled")
    assert (fit.h2, fit.h2_se) == pytest.approx((pve, se), abs=2e-6)


def test_reml_with_a_covariate_agrees_with_gemma(bed):
    folder, store, K, y, x = bed
    (fit,) = api.fit(store, "REML", pcs=0, qcovar=folder / "qcovar.txt", progress=False).traits
    pve, se = run_gemma(folder, folder / "sim", K, y, np.column_stack([np.ones_like(x), x]), "covariate")
    assert gemma_pve(fit.h2, fit.h2_se, float(np.mean(np.diag(K)))) == pytest.approx((pve, se), abs=2e-6)
