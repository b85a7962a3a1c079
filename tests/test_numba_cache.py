"""Numba's cache of dask-h2's kernels lives in the user's cache folder, never inside the installed
package (issue 12, item 4): files numba left in ``site-packages/dask_h2/__pycache__`` outlived a
reinstall (`pip install .`, a run, then `pip install -e .`), and ``import dask_h2`` from any other
folder then found an empty namespace package."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import dask_h2.kinship.standardize

PACKAGE = Path(dask_h2.kinship.standardize.__file__).parent
COMPILE = ("import numpy as np; from dask_h2.kinship.standardize import marker_moments, standardize; "
           "d = np.zeros((3, 4), np.int8); standardize(d, centre=np.zeros(3), inverse_scale=np.ones(3)); print(marker_moments(d).sum())")


def _cache_files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.suffix in (".nbi", ".nbc")}


@pytest.mark.slow
def test_compiled_kernels_are_cached_in_the_user_cache_folder_only(tmp_path):
    environment = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"} | {"XDG_CACHE_HOME": str(tmp_path)}
    in_package = _cache_files(PACKAGE)
    for _ in range(2):  # compile and cache, then load from the cache
        result = subprocess.run([sys.executable, "-c", COMPILE], env=environment, capture_output=True, text=True,
                                cwd=tmp_path)
        assert result.returncode == 0 and result.stdout.strip() == "12", result.stderr
    cached = _cache_files(tmp_path / "dask-h2" / "numba")
    assert {p.name.split("-")[0] for p in cached if p.suffix == ".nbi"} == {
        "standardize._count_calls", "standardize._standardize_calls"}
    assert _cache_files(PACKAGE) == in_package  # nothing new beside the installed source


def test_numba_cache_dir_is_honoured(tmp_path):
    environment = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "mine"), XDG_CACHE_HOME=str(tmp_path / "xdg"))
    result = subprocess.run([sys.executable, "-c", COMPILE], env=environment, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert _cache_files(tmp_path / "mine") and not (tmp_path / "xdg").exists()


@pytest.mark.slow
def test_unwritable_cache_folder_compiles_without_a_cache(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    environment = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"} | {"XDG_CACHE_HOME": str(blocker)}
    in_package = _cache_files(PACKAGE)
    result = subprocess.run([sys.executable, "-c", COMPILE], env=environment, capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert _cache_files(PACKAGE) == in_package
