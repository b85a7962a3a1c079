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


def _matrix(store: Path, out: Path) -> list[tuple[str, object]]:
    problem = api.load(store, progress=False)
    return [
        ("method", lambda: api.fit(store, method=3)),
        ("pcs", lambda: api.fit(store, pcs=2.5)),
        ("pcs", lambda: api.fit(store, pcs=None)),
        ("pcs", lambda: api.fit(store, pcs=True)),
        ("pcs", lambda: api.fit(store, pcs="ten")),
        ("pcs", lambda: problem.fit(pcs=-1)),
        ("constrain", lambda: api.fit(store, constrain="no")),
        ("constrain", lambda: problem.fit(constrain=None)),
        ("max_iter", lambda: api.fit(store, bivariate="all", max_iter=-3)),
        ("max_iter", lambda: api.fit(store, components=True, partition="maf:0,0.5", max_iter=2.5)),
        ("progress", lambda: api.fit(store, progress="yes")),
        ("memory_limit", lambda: api.fit(store, memory_limit="lots")),
        ("memory_limit", lambda: api.grm(store, memory_limit=-5)),
        ("selection", lambda: api.fit(store, selection={"scale": "hwe"})),
        ("moments", lambda: api.fit(store, method="rhe", moments={"n_probes": 10})),
        ("n_probes", lambda: api.MomentsSettings(n_probes=2.5)),
        ("seed", lambda: api.MomentsSettings(seed=-1)),
        ("client", lambda: api.fit(store, client="tcp://127.0.0.1:8786")),
        ("partition", lambda: api.fit(store, method="rhe", partition=0.5)),
        ("prevalence", lambda: api.fit(store, prevalence=True)),
        ("prevalence", lambda: problem.fit(prevalence=object())),
        ("pairs", lambda: problem.fit_bivariate(pairs=["t1"])),
        ("bivariate", lambda: api.fit(store, bivariate=3)),
        ("store", lambda: api.fit(3)),
        ("store", lambda: api.grm("")),
        ("grm", lambda: api.fit(grm=1, pheno="p.txt")),
        ("prefix", lambda: api.export_gcta(store, None)),
        ("tile", lambda: api.grm(store, tile=0)),
        ("recompute", lambda: api.grm(store, recompute=1)),
        ("source", lambda: api.convert(None, out / "x.zarr")),
        ("mpheno", lambda: api.convert(store, out / "x.zarr", mpheno=0)),
        ("chunk_variants", lambda: api.convert(store, out / "x.zarr", chunk_variants=-1)),
        ("hard_call_threshold", lambda: api.convert(store, out / "x.zarr", hard_call_threshold=0.5)),
        ("overwrite", lambda: api.convert(store, out / "x.zarr", overwrite="false")),
        ("genotypes", lambda: api.convert(store, out / "x.zarr", genotypes=7)),
        ("n_samples", lambda: api.simulate(out / "s.zarr", n_samples=0)),
        ("h2", lambda: api.simulate(out / "s.zarr", h2=[0.5, 1.5])),
        ("seed", lambda: api.simulate(out / "s.zarr", seed=-2)),
        ("format", lambda: api.plot(store, out=out / "p", format="gif")),
        ("pcs", lambda: api.run(store, out / "run", pcs="x")),
        ("king_cutoff", lambda: api.king(store, out=out / "k", king_cutoff=0.7)),
        ("king_cutoff", lambda: api.fit(store, selection=api.Selection(king_cutoff=0))),
        ("king_table_filter", lambda: api.king(store, out=out / "k", king_table_filter="high")),
        ("out", lambda: api.king(store, out=None)),
        ("grm_cutoff", lambda: api.fit(store, grm_cutoff=-1)),
        ("parent_offspring", lambda: api.simulate(out / "s.zarr", parent_offspring=-1)),
        ("parent_offspring", lambda: api.simulate(out / "s.zarr", n_samples=10, siblings=6)),
    ]


def test_every_api_argument_is_checked_before_any_work_with_the_command_lines_message(store: Path, tmp_path: Path):
    """The API's invalid-argument matrix: each case a one-line ParameterError naming the parameter (the command
    line would name its option), raised before anything is written."""
    from dask_h2.cli import message

    out = tmp_path / "out"
    out.mkdir()
    cases = _matrix(store, out)
    for parameter, call in cases:
        with pytest.raises(ParameterError) as raised:
            call()
        text = str(raised.value)
        assert text.startswith(parameter) and "\n" not in text and "--" not in text, (parameter, text)
        assert message(raised.value).startswith(("--", "STORE", "PREFIX", "SOURCE")), message(raised.value)
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("call, same", [
    (lambda s: api.fit(s, pcs="2", progress=False), lambda s: api.fit(s, pcs=2, progress=False)),
    (lambda s: api.fit(s, pcs=2, max_iter="5", bivariate=None, progress=False),
     lambda s: api.fit(s, pcs=2, progress=False)),
    (lambda s: api.fit(s, pcs=2, memory_limit="1GB", progress=False), lambda s: api.fit(s, pcs=2, progress=False)),
])
def test_the_api_reads_what_the_command_line_reads(store: Path, call, same) -> None:
    """Text that the command line accepts (``"2"``, ``"1GB"``) means the same through the API."""
    assert repr(call(store).traits) == repr(same(store).traits)


def test_memory_limit_as_text_is_read_as_the_command_line_reads_it(store: Path) -> None:
    expected = r"^the GRM of 200 samples in tiles of 200: .* more than memory_limit=1000 \(0.98 kiB\)$"
    with pytest.raises(ParameterError, match=expected):
        api.grm(store, memory_limit="1kB", recompute=True, progress=False)
