"""The examples in the package's docstrings run as doctests (``pytest`` collects them from ``dask_h2/``):
they find ``tmp``, a folder holding a small store ``demo.zarr`` (100 samples × 500 markers, one trait of
h² = 0.5) and an RData file ``small.RData`` (50 × 200)."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def doctest_data(tmp_path_factory):
    from dask_h2 import api

    folder = tmp_path_factory.mktemp("doctest")
    api.simulate(folder / "demo.zarr", n_samples=100, n_markers=500, h2=[0.5], seed=3, progress=False)
    api.simulate(folder / "small.RData", n_samples=50, n_markers=200, h2=[0.5], seed=4, progress=False)
    return folder


@pytest.fixture(autouse=True)
def _doctest_namespace(request, doctest_namespace):
    if request.node.__class__.__name__ == "DoctestItem":
        doctest_namespace["tmp"] = request.getfixturevalue("doctest_data")
