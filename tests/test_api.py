"""The Python API checks its arguments as the command line does, and means what it is told."""
from __future__ import annotations

from pathlib import Path

import pytest

from dask_h2.io.convert import simulate_to
from dask_h2 import api
from dask_h2.errors import ParameterError
from dask_h2.io.simulate import SimulationDesign


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("api") / "small.zarr"
    simulate_to(path, SimulationDesign(n_samples=200, n_markers=900, h2=(0.5,), seed=8), progress=False)
    return path


@pytest.mark.parametrize("given, meant", [("reml", "REML"), ("REML", "REML"), ("Reml", "REML"), ("ml", "ML"),
                                          ("ML", "ML")])
def test_a_problem_fits_the_method_it_is_given_in_any_case(store: Path, given: str, meant: str) -> None:
    problem = api.load(store, progress=False)
    (fit,) = problem.fit(method=given, pcs=2).traits
    (expected,) = api.fit(store, method=meant, pcs=2, progress=False).traits
    assert fit.method == meant and repr(fit) == repr(expected)  # repr: NaN SEs equal too


@pytest.mark.parametrize("method", ["rhe", "bogus", "", 3, None])
def test_a_problem_refuses_a_method_it_cannot_fit(store: Path, method) -> None:
    with pytest.raises(ParameterError, match="^method: expected one of reml, ml"):
        api.load(store, progress=False).fit(method=method, pcs=2)
