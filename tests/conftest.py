"""Shared fixtures: small structured genotype data and the team's reference data."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
collect_ignore = ["interrupt_zygote.py"]  # a program the interrupt tests run, not a module to import for doctests


def pytest_configure(config):
    """Put this interpreter's scripts folder (the venv's ``bin``, holding ``dask-h2``) first on
    PATH, so that tests of the installed command run it from the environment under test
    even when the venv is not activated (the README runs ``.venv/bin/python -m pytest``)."""
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def shared_data(name: str) -> Path:
    """A folder of ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"reference data {path} is absent (it lives in ../shared/data beside the project)")
    return path


def centred_kinship(n: int, m: int, seed: int) -> np.ndarray:
    """A GRM of standardized random genotypes (K·1 = 0), float64."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.5, m)
    G = rng.binomial(2, p, size=(n, m)).astype(float)
    G = G[:, G.std(axis=0) > 0]
    W = (G - G.mean(axis=0)) / np.sqrt(2 * (G.mean(axis=0) / 2) * (1 - G.mean(axis=0) / 2))
    K = W @ W.T / W.shape[1]
    C = np.eye(n) - 1.0 / n
    return C @ K @ C
