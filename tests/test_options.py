"""Every subcommand with an invalid value of each of its options: exit code 2, one line on stderr
(``dask-h2: error: ...``), no traceback, and no new or changed file that a later command would
accept. The option checks themselves (dask_h2.checks) and the API's use of them follow."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bed_reader import to_bed

from dask_h2.io.convert import simulate_to
from dask_h2 import api
from dask_h2.cli import main, message
from dask_h2.store import LOCKS
from dask_h2.errors import ParameterError
from dask_h2.checks import (OptionError, comma_list, existing_file, fraction, integer, memory_size, number_in,
                             probability, scheduler_address, writable_prefix)
from dask_h2.io.simulate import SimulationDesign

N, M = 60, 400
DESIGN = SimulationDesign(n_samples=N, n_markers=M, h2=(0.5, 0.2), seed=3)
IIDS = [f"ind{i + 1}" for i in range(N)]


def _table(path: Path, rows: list[str]) -> Path:
    path.write_text("".join(f"{row}\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Valid inputs of every kind, and files that are wrong in one way each."""
    folder = tmp_path_factory.mktemp("options")
    simulate_to(folder / "sim.RData", DESIGN, progress=False)
    store = simulate_to(folder / "store.zarr", DESIGN, progress=False)
    api.grm(store, progress=False)
    api.export_gcta(store, folder / "gcta", progress=False)
    assert main(["--quiet", "run", str(folder / "sim.RData"), str(folder / "run")]) == 0
    rng = np.random.default_rng(0)
    to_bed(folder / "geno.bed", rng.integers(0, 3, (N, M)).astype(np.float32),
           properties={"iid": IIDS, "fid": IIDS, "sid": [f"rs{j}" for j in range(M)]})
    _table(folder / "pheno.txt", [f"{i} {i} {a:.4f} {b:.4f}" for i, (a, b) in zip(IIDS, rng.normal(size=(N, 2)))])
    _table(folder / "qcovar.txt", [f"{i} {i} {v:.3f}" for i, v in zip(IIDS, rng.normal(size=N))])
    _table(folder / "covar.txt", [f"{i} {i} {'ab'[k % 2]}" for k, i in enumerate(IIDS)])
    _table(folder / "nomatch.txt", ["x1 x1 1", "x2 x2 2"])
    _table(folder / "qcovar_text.txt", [f"{i} {i} {'tall' if k == 3 else k}" for k, i in enumerate(IIDS)])
    _table(folder / "qcovar_constant.txt", [f"{i} {i} 7" for i in IIDS])
    _table(folder / "qcovar_inf.txt", [f"{i} {i} {'inf' if k == 5 else k}" for k, i in enumerate(IIDS)])
    _table(folder / "covar_one_level.txt", [f"{i} {i} same" for i in IIDS])
    _table(folder / "pheno_short_line.txt", [f"{i} {i} 1 2" if k else f"{i} {i} 1" for k, i in enumerate(IIDS)])
    (folder / "a_folder").mkdir()
    (folder / "notes.txt").write_text("not genotypes\n")
    return folder


# one invalid value per case: (command, arguments); {d} is the data folder, {o} the test's own output folder
STORE_GRM_OPTIONS = [
    ["--scale", "bogus"], ["--maf", "-0.1"], ["--maf", "0.6"], ["--maf", "abc"], ["--maf", "nan"],
    ["--max-missing", "-0.1"], ["--max-missing", "1.5"], ["--max-missing", "abc"], ["--max-missing", "inf"],
    ["--keep", "{d}/absent.txt"], ["--keep", "{d}/a_folder"], ["--keep", "{d}/nomatch.txt"],
    ["--remove", "{d}/absent.txt"], ["--remove", "{d}/nomatch.txt"],
    ["--extract", "{d}/absent.txt"], ["--extract", "{d}/nomatch.txt"],
    ["--exclude", "{d}/absent.txt"], ["--exclude", "{d}/nomatch.txt"],
    ["--scheduler", "notanaddress"], ["--scheduler", "tcp://host:notaport"], ["--scheduler", "tcp://:8786"],
    ["--scheduler", "tcp://host:70000"],
    ["--king-cutoff", "0"], ["--king-cutoff", "0.6"], ["--king-cutoff", "abc"], ["--king-cutoff", "nan"],
]
FIT_OPTIONS = [
    ["--method", "gls"], ["--pcs", "-1"], ["--pcs", "abc"], ["--pcs", "1.5"], ["--pcs", "58"],
    ["--covar", "{d}/absent.txt"], ["--covar", "{d}/a_folder"], ["--covar", "{d}/covar_one_level.txt"],
    ["--covar", "{d}/nomatch.txt"], ["--qcovar", "{d}/absent.txt"], ["--qcovar", "{d}/qcovar_text.txt"],
    ["--qcovar", "{d}/qcovar_constant.txt"], ["--qcovar", "{d}/qcovar_inf.txt"], ["--qcovar", "{d}/nomatch.txt"],
    ["--memory-limit", "0"], ["--memory-limit", "abc"], ["--grm-cutoff", "0"], ["--grm-cutoff", "abc"],
] + STORE_GRM_OPTIONS
MOMENTS_OPTIONS = [  # fit and run: the moments estimator's
    ["--random-vectors", "1"], ["--random-vectors", "abc"], ["--seed", "-1"], ["--seed", "abc"],
    ["--jackknife-blocks", "1"], ["--jackknife-blocks", "2.5"], ["--pc-passes", "0"], ["--pc-markers", "-1"],
    ["--method", "rhe", "--partition", "maf:abc"], ["--method", "rhe", "--partition", "maf:0.3,0.1"],
    ["--method", "rhe", "--partition", "{d}/absent.txt"], ["--method", "rhe", "--pcs", "58"],
    ["--mc-samples", "1"], ["--mc-samples", "abc"], ["--cg-tolerance", "0"], ["--cg-tolerance", "0.5"],
    ["--cg-max-iter", "0"], ["--method", "mc-reml", "--pcs", "58"], ["--method", "mc-reml", "--bivariate", "all"],
    ["--method", "mc-reml", "--memory-limit", "1MB"],
]
PREVALENCE_OPTIONS = [  # fit and run: the liability scale's
    ["--prevalence", "0"], ["--prevalence", "1.5"], ["--prevalence", "abc"], ["--prevalence", "0.1,0.2,0.3"],
    ["--prevalence", "0.1"],  # the traits are quantitative
]
GREML_OPTIONS = [  # fit: bivariate REML and several GRMs
    ["--bivariate", "trait1,trait1"], ["--bivariate", "trait1,nope"], ["--bivariate", "trait1"],
    ["--bivariate", "all", "--method", "ml"], ["--max-iter", "0"], ["--max-iter", "abc"],
    ["--mgrm-gcta", "{d}/absent.txt"], ["--mgrm"], ["--mgrm", "--partition", "maf:0,0.001,0.5"],
    ["--partition", "maf:0.1,0.5"],
]
CASES = (
    [
        ("simulate", ["{o}/x.RData", *bad])
        for bad in (
            ["--samples", "1"],
            ["--samples", "0"],
            ["--samples", "-5"],
            ["--samples", "abc"],
            ["--markers", "0"],
            ["--markers", "abc"],
            ["--h2", "abc"],
            ["--h2", "1.5"],
            ["--h2", "-0.1"],
            ["--h2", ""],
            ["--h2", "0.5,,0.3"],
            ["--h2", "nan"],
            ["--seed", "-1"],
            ["--seed", "abc"],
            ["--parent-offspring", "-1"],
            ["--parent-offspring", "abc"],
            ["--siblings", "1.5"],
            ["--samples", "10", "--siblings", "4", "--parent-offspring", "2"],
            ["--family-environment", "1.5"],
            ["--h2", "0.8", "--family-environment", "0.3"],
        )
    ]
    + [
        ("simulate", ["{o}/x.txt"]),
        ("simulate", ["{d}/sim.RData"]),
        ("simulate", ["{d}/notes.txt/x.RData"]),
        ("simulate", ["{o}/"]),
    ]
    + [
        ("convert", ["{d}/sim.RData", "{o}/out.zarr", *bad])
        for bad in (
            ["--chunk", "0"],
            ["--chunk", "-3"],
            ["--chunk", "abc"],
            ["--chunk", "1.5"],
            ["--genotypes", "nothing"],
            ["--phenotypes", "nothing"],
            ["--pheno", "{d}/pheno.txt"],
            ["--pheno", "{d}/absent.txt"],
            ["--mpheno", "1"],
            ["--mpheno", "0"],
        )
    ]
    + [
        ("convert", ["{d}/geno.bed", "{o}/out.zarr", *bad])
        for bad in (
            ["--pheno", "{d}/nomatch.txt"],
            ["--pheno", "{d}/pheno_short_line.txt"],
            ["--pheno", "{d}/a_folder"],
            ["--pheno", "{d}/pheno.txt", "--mpheno", "3"],
            ["--pheno", "{d}/pheno.txt", "--mpheno", "-1"],
            ["--hard-call-threshold", "0.5"],
            ["--hard-call-threshold", "0.1"],
            ["--pheno", "{d}/pheno.txt", "--mpheno", "abc"],
        )
    ]
    + [("convert", [src, "{o}/out.zarr"]) for src in ("{d}/absent.RData", "{d}/a_folder", "{d}/notes.txt")]
    + [("convert", ["{d}/sim.RData", out]) for out in ("{d}/store.zarr", "{d}/notes.txt/out.zarr")]
    + [
        ("grm", ["{d}/store.zarr", *bad])
        for bad in (
            ["--memory-limit", "0"],
            ["--memory-limit", "-1GB"],
            ["--memory-limit", "abc"],
            ["--memory-limit", ""],
            ["--memory-limit", "100B", "--recompute"],
            ["--tile", "0"],
            ["--tile", "-5"],
            ["--tile", "abc"],
            ["--out-gcta", "{d}/notes.txt/gcta"],
            ["--partition", "maf:abc"],
            ["--partition", "maf:0.3,0.1"],
            ["--partition", "{d}/absent.txt"],
            ["--partition", "maf:0,0.001,0.5"],
            *STORE_GRM_OPTIONS,
        )
    ]
    + [("grm", [store]) for store in ("{d}/absent.zarr", "{d}/a_folder", "{d}/sim.RData")]
    + [
        ("king", ["{d}/store.zarr", "--out", "{o}/king", *bad])
        for bad in (
            ["--king-table-filter", "0.6"],
            ["--king-table-filter", "abc"],
            ["--king-cutoff", "0"],
            ["--king-cutoff", "0.51"],
            ["--memory-limit", "0"],
            ["--memory-limit", "100B"],
            ["--keep", "{d}/absent.txt"],
            ["--remove", "{d}/nomatch.txt"],
            ["--extract", "{d}/nomatch.txt"],
            ["--exclude", "{d}/absent.txt"],
            ["--scheduler", "notanaddress"],
        )
    ]
    + [("king", args) for args in (["{d}/absent.zarr", "--out", "{o}/king"], ["{d}/store.zarr"],
                                   ["{d}/store.zarr", "--out", "{d}/notes.txt/king"])]
    + [
        ("fit", ["{d}/store.zarr", "--out", "{o}/fit", *bad])
        for bad in FIT_OPTIONS + MOMENTS_OPTIONS + PREVALENCE_OPTIONS + GREML_OPTIONS
    ]
    + [
        ("fit", args)
        for args in (
            ["{d}/store.zarr", "--out", "{d}/notes.txt/fit"],
            ["{d}/store.zarr"],
            ["--out", "{o}/fit"],
            ["{d}/store.zarr", "--out", "{o}/fit", "--pheno", "{d}/pheno.txt"],
            ["{d}/store.zarr", "--out", "{o}/fit", "--grm", "{d}/gcta"],
            ["--grm", "{d}/gcta", "--out", "{o}/fit"],
            ["--grm", "{d}/absent", "--pheno", "{d}/pheno.txt", "--out", "{o}/f"],
            ["--grm", "{d}/gcta", "--pheno", "{d}/absent.txt", "--out", "{o}/fit"],
            ["--grm", "{d}/gcta", "--pheno", "{d}/nomatch.txt", "--out", "{o}/fit"],
            ["--grm", "{d}/gcta", "--pheno", "{d}/pheno.txt", "--out", "{o}/fit", "--method", "rhe"],
            ["{d}/absent.zarr", "--out", "{o}/fit"],
        )
    ]
    + [("plot", ["{d}/store.zarr", "--out", "{o}/plot", *bad]) for bad in [["--format", "jpg"], *FIT_OPTIONS]]
    + [
        ("plot", args)
        for args in (
            ["{d}/store.zarr", "--out", "{d}/notes.txt/plot"],
            ["--grm", "{d}/absent", "--pheno", "{d}/pheno.txt", "--out", "{o}/plot"],
            ["--grm", "{d}/gcta", "--pheno", "{d}/absent.txt", "--out", "{o}/plot"],
        )
    ]
    + [
        ("run", ["{d}/sim.RData", "{d}/run", *bad])
        for bad in (
            ["--hard-call-threshold", "-0.1"],
            ["--genotypes", "nothing"],
            ["--phenotypes", "nothing"],
            ["--pheno", "{d}/pheno.txt"],
            ["--mpheno", "0"],
            ["--mpheno", "abc"],
            *FIT_OPTIONS,
            *MOMENTS_OPTIONS,
            *PREVALENCE_OPTIONS,
        )
    ]
    + [
        ("run", args)
        for args in (
            ["{d}/absent.RData", "{o}/run"],
            ["{d}/sim.RData", "{d}/notes.txt/run"],
            ["{d}/notes.txt", "{o}/run"],
        )
    ]
    + [
        ("demo", ["--out-dir", "{o}/demo", *bad])
        for bad in (
            ["--samples", "5"],
            ["--samples", "0"],
            ["--samples", "abc"],
            ["--markers", "0"],
            ["--markers", "abc"],
            ["--seed", "-1"],
            ["--seed", "abc"],
            ["--method", "gls"],
            ["--scheduler", "notanaddress"],
        )
    ]
    + [("demo", ["--out-dir", "{d}/notes.txt"]), ("demo", ["--out-dir", "{d}/notes.txt/demo"])]
    + [(command, ["--bogus"]) for command in ("simulate", "convert", "grm", "king", "fit", "plot", "run", "demo")]
    + [("bogus", []), ("", [])]
)


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its size and time, but a store's lock files (empty, kept between runs)
    and the folders themselves (whose times change with their lock files)."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))
            if p.is_file() and LOCKS not in p.parts}


@pytest.mark.parametrize("command, args", CASES, ids=[" ".join([c, *a]).replace("{d}/", "").replace("{o}/", "")
                                                       for c, a in CASES])
def test_invalid_option_value_is_one_line_and_exit_2(data, tmp_path, capsys, command, args):
    argv = ["--quiet", *([command] if command else []), *(a.format(d=data, o=tmp_path) for a in args)]
    before = _files(data)
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("dask-h2: error: ") and "\n" not in err and "Traceback" not in captured.err, captured.err
    assert _files(data) == before  # nothing new or changed beside the inputs
    assert list(tmp_path.iterdir()) == []  # and no output, complete or not


def test_the_matrix_covers_every_subcommand_and_option():
    """Each option of each subcommand has at least one invalid value in the matrix (flags aside)."""
    from dask_h2.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    covered_by: dict[str, set[str]] = {}
    for command, args in CASES:
        covered_by.setdefault(command, set()).update(a for a in args if a.startswith("--"))
    for name, parser in commands.items():
        options = {o for action in parser._actions if action.option_strings and action.nargs != 0
                   for o in action.option_strings if o != "--help"}
        assert options <= covered_by[name], f"{name}: no invalid value for {sorted(options - covered_by[name])}"


@pytest.mark.parametrize("check, good, bad", [
    (integer(1), [("3", 3), (7, 7), (np.int64(2), 2)], ["0", "-3", "abc", "1.5", 2.5, True, None]),
    (number_in(0, 0.5), [("0", 0.0), ("0.5", 0.5), (0.25, 0.25)], ["-0.1", "0.6", "nan", "inf", "abc", None]),
    (fraction, [("1", 1.0), ("0", 0.0)], ["1.01", "-1e-9"]),
    (probability, [("0.1", 0.1)], ["0", "1", "2"]),
    (comma_list(fraction), [("0.5,0.3", (0.5, 0.3)), ([0, 1], (0.0, 1.0))], ["", "abc", "0.5,,0.3", "0.5,2"]),
    (memory_size, [("2GB", 2 * 10**9), ("1.5GiB", int(1.5 * 2**30)), (1000, 1000)], ["0", "-1GB", "abc", "", "GB"]),
    (scheduler_address, [("tcp://10.0.0.1:8786", "tcp://10.0.0.1:8786"), ("host:8786", "host:8786"),
                         ("inproc://x/1/2", "inproc://x/1/2")],
     ["notanaddress", "tcp://host", "tcp://host:abc", "tcp://:8786", "tcp://h:0", "tcp://h:65536"]),
])
def test_checks_accept_and_refuse(check, good, bad):
    for value, expected in good:
        assert check(value) == expected
    for value in bad:
        with pytest.raises(OptionError):
            check(value)


def test_file_and_prefix_checks(tmp_path):
    (tmp_path / "f.txt").write_text("x")
    assert existing_file(tmp_path / "f.txt") == tmp_path / "f.txt"
    for value in (tmp_path / "absent", tmp_path):
        with pytest.raises(OptionError, match=str(value)):
            existing_file(value)
    assert writable_prefix(tmp_path / "new" / "deeper" / "out") == tmp_path / "new" / "deeper" / "out"
    for value in (tmp_path / "f.txt" / "out", ""):
        with pytest.raises(OptionError):
            writable_prefix(value)


def test_api_errors_name_the_parameter_and_the_command_line_its_option(tmp_path):
    store = simulate_to(
        tmp_path / "s.zarr", SimulationDesign(n_samples=30, n_markers=200, h2=(0.5,), seed=1), progress=False
    )
    rdata = simulate_to(
        tmp_path / "s.RData", SimulationDesign(n_samples=30, n_markers=200, h2=(0.5,), seed=1), progress=False
    )
    for call, parameter, option in [
        (
            lambda: api.convert(rdata, tmp_path / "c.zarr", chunk_variants=0, progress=False),
            "chunk_variants",
            "--chunk",
        ),
        (
            lambda: api.convert(rdata, tmp_path / "c.zarr", chunk_variants=-3, progress=False),
            "chunk_variants",
            "--chunk",
        ),
        (lambda: api.grm(store, tile=0, progress=False), "tile", "--tile"),
        (lambda: api.grm(store, memory_limit="abc", progress=False), "memory_limit", "--memory-limit"),
        (lambda: api.fit(store, pcs=-1, progress=False), "pcs", "--pcs"),
        (lambda: api.fit(store, method="gls", progress=False), "method", "--method"),
    ]:
        with pytest.raises(ParameterError, match=f"^{parameter}") as raised:
            call()
        assert message(raised.value).startswith(option) and "--" not in str(raised.value)
    assert not (tmp_path / "c.zarr").exists()


def test_memory_limit_below_the_need_is_said_in_readable_units(data, capsys):
    assert main(["--quiet", "grm", str(data / "store.zarr"), "--recompute", "--memory-limit", "100kB"]) == 2
    err = capsys.readouterr().err
    assert "needed, more than --memory-limit 100000 (97.66 kiB)" in err
    assert "0.00 GiB" not in err


@pytest.mark.parametrize("given, limit", [([], "the default --memory-limit (2.00 GiB)"),
                                          (["--memory-limit", "3GB"], "--memory-limit 3000000000 (2.79 GiB)")])
def test_too_many_random_vectors_are_blamed_on_themselves_and_the_limit_as_given(data, tmp_path, capsys, given, limit):
    assert main(["--quiet", "fit", str(data / "store.zarr"), "--method", "rhe", "--random-vectors", "1000000000",
                 "--out", str(tmp_path / "fit"), *given]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dask-h2: error: the moments passes for ") and err.count("\n") == 0
    assert "with --random-vectors 1000000000: " in err and err.endswith(f"needed, more than {limit}")


@pytest.mark.slow
def test_fit_report_to_a_closed_pipe_ends_quietly(data, tmp_path):
    import subprocess
    import sys

    command = [
        sys.executable,
        "-m",
        "dask_h2",
        "--quiet",
        "fit",
        str(data / "store.zarr"),
        "--out",
        str(tmp_path / "f"),
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as child:
        child.stdout.close()  # as `| head -0` does
        err = child.stderr.read().decode()
    assert "Traceback" not in err and "BrokenPipe" not in err and err.strip() == ""
    assert child.returncode in (0, 141) and json.loads((tmp_path / "f.json").read_text())["traits"]
