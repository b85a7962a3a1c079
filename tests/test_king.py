"""KING-robust kinship against plink2 (``--make-king-table``, ``--king-table-filter``, ``--king-cutoff``) and an
independent dense count, the cutoff on grm/fit (cached, reported), GCTA's ``--grm-cutoff`` rule and bad values."""
from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
import zarr
from bed_reader import to_bed

from dask_h2 import api
from dask_h2.cli import main
from dask_h2.errors import ParameterError
from dask_h2.io.gcta import write_grm
from dask_h2.io.king import plink_g
from dask_h2.kinship import king
from dask_h2.kinship.king import gcta_cutoff, king_pairs, prune_relatives, scratch_layout
from dask_h2.planning import KingPlan
from dask_h2.store import read_strings

PLINK2 = shutil.which("plink2")
needs_plink2 = pytest.mark.skipif(PLINK2 is None, reason="plink2 is not installed (Debian: apt-get install plink2)")
N, M = 300, 2500


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    """A store with 12 parent-offspring and 12 sibling pairs, its genotypes as a .bed for plink2."""
    folder = tmp_path_factory.mktemp("king")
    store = api.simulate(folder / "family.zarr", n_samples=N, n_markers=M, h2=[0.5], seed=7, parent_offspring=12,
                         siblings=12, progress=False)
    root = zarr.open_group(store, mode="r")
    calls = root["call_dosage"][:].T.astype(np.int8)
    iid = np.array(read_strings(root, "sample_id"), dtype=str)
    _bed(folder / "family", calls, iid)
    return folder, store, calls, iid


def _bed(prefix, calls, iid):
    """PLINK .bed of calls (samples, markers; -1 missing) with FID = IID, on chromosome 1."""
    n, m = calls.shape
    values = np.where(calls < 0, -127, calls).astype(np.int8)
    to_bed(f"{prefix}.bed", values, properties={
        "fid": iid, "iid": iid, "chromosome": ["1"] * m, "sid": [f"snp{j + 1}" for j in range(m)],
        "bp_position": np.arange(1, m + 1) * 100}, count_A1=True)


def _plink2(prefix, out, *options):
    subprocess.run([PLINK2, "--bfile", str(prefix), "--threads", "1", "--out", str(out), *options], check=True,
                   capture_output=True)


def _table(path):
    """A .kin0 as {(IID1, IID2): (NSNP, HETHET, IBS0, KINSHIP) strings} and its pair order."""
    lines = path.read_text().splitlines()
    header = lines[0].lstrip("#").split("\t")
    rows = [dict(zip(header, line.split("\t"))) for line in lines[1:]]
    order = [(row["IID1"], row["IID2"]) for row in rows]
    return {key: (row["NSNP"], row["HETHET"], row["IBS0"], row["KINSHIP"]) for key, row in zip(order, rows)}, order


def _dense(calls):
    """Independent per-pair counts (n, n) from indicator matrices: HETHET, IBS0, h_i (i het, j hom), NSNP."""
    het, hom, called, ref, alt = ((x * 1.0) for x in (calls == 1, (calls == 0) | (calls == 2), calls >= 0,
                                                      calls == 0, calls == 2))
    counts = het @ het.T, ref @ alt.T + alt @ ref.T, het @ hom.T, called @ called.T  # float64: exact integers
    return tuple(np.rint(c).astype(np.int64) for c in counts)


def _scratch(z, plan, store=None):
    return zarr.create_array(store=store or {}, **scratch_layout(z, plan=plan, n_samples=z.shape[1]))


def test_every_count_and_kinship_equals_a_dense_count(family):
    _, _, calls, _ = family
    z = zarr.create_array(store={}, data=np.ascontiguousarray(calls.T), chunks=(700, N))
    plan = KingPlan(tile=128, chunk_markers=1400, dask_threads=2, blas_threads=1)
    pairs = list(king_pairs(z, plan=plan, scratch=_scratch(z, plan)))
    first, second = (np.concatenate([getattr(p, name) for p in pairs]) for name in ("first", "second"))
    hethet, ibs0, het_hom, nsnp = _dense(calls)
    rows, cols = np.tril_indices(N, -1)
    order = np.lexsort((cols, rows))
    assert (first == rows[order]).all() and (second == cols[order]).all()
    i, j = first, second
    expected = 0.5 - (4 * ibs0[i, j] + het_hom[i, j] + het_hom[j, i]).astype(float) / \
        (4 * (hethet[i, j] + np.minimum(het_hom[i, j], het_hom[j, i]))).astype(float)
    np.testing.assert_array_equal(np.concatenate([p.kinship for p in pairs]), expected)  # bit for bit
    for name, dense in (("hethet", hethet), ("ibs0", ibs0), ("n_markers", nsnp)):
        np.testing.assert_array_equal(np.concatenate([getattr(p, name) for p in pairs]), dense[i, j])


@needs_plink2
def test_table_equals_plink2_make_king_table(family, tmp_path):
    folder, store, _, _ = family
    _plink2(folder / "family", tmp_path / "plink", "--make-king-table")
    api.king(store, out=tmp_path / "ours", progress=False)
    theirs, their_order = _table(tmp_path / "plink.kin0")
    ours, our_order = _table(tmp_path / "ours.kin0")
    assert our_order == their_order and len(ours) == N * (N - 1) // 2
    assert ours == theirs  # every printed digit of NSNP, HETHET, IBS0 and KINSHIP


@needs_plink2
@pytest.mark.parametrize("table_filter", [0.0442, 0.177])
def test_filtered_table_and_cutoff_equal_plink2(family, tmp_path, table_filter):
    folder, store, _, _ = family
    _plink2(folder / "family", tmp_path / "plink", "--make-king-table", "--king-table-filter", str(table_filter),
            "--king-cutoff", "0.0884")
    api.king(store, out=tmp_path / "ours", king_table_filter=table_filter, king_cutoff=0.0884, progress=False)
    theirs, their_order = _table(tmp_path / "plink.kin0")
    ours, our_order = _table(tmp_path / "ours.kin0")
    assert our_order == their_order and ours == theirs and len(ours) >= 24
    for kind in ("in", "out"):
        their_ids = [line.split("\t")[1] for line in (tmp_path / f"plink.king.cutoff.{kind}.id").read_text()
                     .splitlines()[1:]]
        our_lines = (tmp_path / f"ours.king.cutoff.{kind}.id").read_text().splitlines()
        assert our_lines[0] == "#IID" and our_lines[1:] == their_ids  # same samples removed, same order


@needs_plink2
def test_degenerate_pairs_print_as_plink2(tmp_path):
    rng = np.random.default_rng(3)
    calls = rng.integers(0, 3, (8, 400)).astype(np.int8)
    calls[1] = -1  # no call at all: nan with everyone
    calls[2] = np.where(rng.random(400) < 0.5, 0, 2)  # no heterozygote: -inf
    calls[3] = calls[0]  # a duplicate: 0.5
    calls[4, :200], calls[5, 200:] = -1, -1  # disjoint calls
    iid = np.array([f"s{k}" for k in range(8)])
    _bed(tmp_path / "edge", calls, iid)
    store = api.convert(tmp_path / "edge.bed", tmp_path / "edge.zarr", progress=False)
    _plink2(tmp_path / "edge", tmp_path / "plink", "--make-king-table", "--king-table-filter", "0.2",
            "--king-cutoff", "0.2")
    api.king(store, out=tmp_path / "ours", king_table_filter=0.2, king_cutoff=0.2, progress=False)
    assert _table(tmp_path / "ours.kin0") == _table(tmp_path / "plink.kin0")
    assert "nan" in (tmp_path / "ours.kin0").read_text()  # kept by the filter, as plink2 keeps it


def test_cutoff_follows_plink2s_greedy_order():
    # a chain 0-1-2-3: sample 0 has one relative, so 1 goes; then 2-3 is a pair: the later, 3
    assert prune_relatives(np.array([1, 2, 3]), np.array([0, 1, 2]), n_samples=5).nonzero()[0].tolist() == [1, 3]
    # no single relative anywhere (a triangle): the first with the most relatives, then the pair's later sample
    assert prune_relatives(np.array([1, 2, 2]), np.array([0, 0, 1]), n_samples=3).nonzero()[0].tolist() == [0, 2]


def test_gcta_cutoff_removes_the_member_with_more_pairs():
    # pairs (1,0), (2,0), (3,2): counts 0:2, 1:1, 2:2, 3:1 -> (1,0): 0; (2,0): 2 (tie: the later); (3,2): 2
    removed = gcta_cutoff(np.array([1, 2, 3]), np.array([0, 0, 2]), n_samples=4)
    assert removed.nonzero()[0].tolist() == [0, 2]


def test_fit_with_king_cutoff_equals_fit_without_those_samples_and_reports_them(family, tmp_path, monkeypatch):
    _, store, _, iid = family
    report = api.fit(store, pcs=2, selection=api.Selection(king_cutoff=0.0884), progress=False)
    api.king(store, out=tmp_path / "k", king_table_filter=0.5, king_cutoff=0.0884, progress=False)
    out = [line.split()[0] for line in (tmp_path / "k.king.cutoff.out.id").read_text().splitlines()[1:]]
    (tmp_path / "remove.txt").write_text("".join(f"{name} {name}\n" for name in out))
    plain = api.fit(store, pcs=2, selection=api.Selection(remove=tmp_path / "remove.txt"), progress=False)
    assert len(out) >= 24 and report.n_samples == plain.n_samples == N - len(out)
    assert report.traits[0].h2 == pytest.approx(plain.traits[0].h2, abs=1e-9)
    assert report.extra["n_relatives_removed"] == len(out) and report.extra["king_cutoff"] == 0.0884
    assert report.extra["n_samples_removed"] == len(out)
    monkeypatch.setattr(king, "king_pairs", lambda *a, **k: pytest.fail("the cached relatives were recomputed"))
    again = api.fit(store, method="rhe", pcs=2, selection=api.Selection(king_cutoff=0.0884),
                    moments=api.MomentsSettings(n_blocks=20), progress=False)
    assert again.n_samples == N - len(out) and again.extra["n_relatives_removed"] == len(out)


def test_fit_command_reports_the_relatives_removed(family, tmp_path):
    _, store, _, _ = family
    assert main(["--quiet", "fit", str(store), "--pcs", "2", "--king-cutoff", "0.177", "--out",
                 str(tmp_path / "fit")]) == 0
    written = json.loads((tmp_path / "fit.json").read_text())
    assert written["n_relatives_removed"] >= 24 and written["king_cutoff"] == 0.177


@pytest.mark.parametrize("value", [0, 0.6, -0.1, float("nan")])
def test_a_cutoff_outside_its_range_is_one_line(family, tmp_path, capsys, value):
    _, store, _, _ = family
    with pytest.raises(ParameterError, match=r"king_cutoff: must be a number in \(0, 0.5\]"):
        api.king(store, out=tmp_path / "k", king_cutoff=value, progress=False)
    assert main(["king", str(store), "--out", str(tmp_path / "k"), "--king-cutoff", str(value)]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "--king-cutoff" in error and not (tmp_path / "k.kin0").exists()


def test_a_table_filter_above_one_half_is_refused(family, tmp_path, capsys):
    _, store, _, _ = family
    assert main(["king", str(store), "--out", str(tmp_path / "k"), "--king-table-filter", "0.7"]) == 2
    assert "--king-table-filter" in capsys.readouterr().err


def test_plink_number_format():
    assert [plink_g(v) for v in (0.0, -0.0, 1.0, 0.1, 0.000123456, 1e-300, float("nan"))] == \
        ["0", "0", "1", "0.1", "0.000123456", "1e-300", "nan"]  # dtoa_g signs only x < 0


def _gcta_rule(K, cutoff):
    """GCTA's rm_cor_indi, step by step: the pairs (i > j) above the cutoff, each sample's count of them, from each
    pair the first member unless it has fewer pairs than the second."""
    pairs = [(i, j) for i in range(len(K)) for j in range(i) if K[i, j] > cutoff]
    count = {}
    for i, j in pairs:
        count[i], count[j] = count.get(i, 0) + 1, count.get(j, 0) + 1
    return sorted({j if count[i] < count[j] else i for i, j in pairs})


def test_grm_cutoff_fits_the_samples_gcta_keeps(family, tmp_path):
    _, store, _, iid = family
    K = api.grm(store, progress=False).kinship[:]
    removed = _gcta_rule(K, 0.1)
    kept = np.setdiff1d(np.arange(N), removed)
    report = api.fit(store, pcs=2, grm_cutoff=0.1, progress=False)
    assert report.n_samples == kept.size and report.extra["n_grm_cutoff_removed"] == len(removed) >= 24
    write_grm(tmp_path / "kept", K[np.ix_(kept, kept)], iid=iid[kept].astype(object), n_markers=M)
    traits = zarr.open_group(store, mode="r")["traits"][:]
    (tmp_path / "pheno.txt").write_text("".join(f"{iid[k]} {iid[k]} {float(traits[k, 0])!r}\n" for k in kept))
    files = api.fit(grm=tmp_path / "kept", pheno=tmp_path / "pheno.txt", pcs=2, progress=False)
    assert report.traits[0].h2 == pytest.approx(files.traits[0].h2, abs=2e-5)  # K written as float32
    with pytest.raises(ParameterError, match="grm_cutoff goes with"):
        api.fit(store, method="rhe", grm_cutoff=0.1, progress=False)


def test_a_dask_cluster_gives_the_same_pairs_and_files(family, tmp_path):
    from distributed import Client

    _, store, calls, _ = family
    z = zarr.create_array(store={}, data=np.ascontiguousarray(calls.T), chunks=(700, N))
    plan = KingPlan(tile=128, chunk_markers=1400, dask_threads=2, blas_threads=1)  # 6 tiles
    local = api.king(store, out=tmp_path / "local", king_table_filter=0.0442, king_cutoff=0.0884, progress=False)
    expected = list(king_pairs(z, plan=plan, scratch=_scratch(z, plan), table_filter=0.0442, cutoff=0.0884))
    with Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as client:
        remote = api.king(store, out=tmp_path / "cluster", king_table_filter=0.0442, king_cutoff=0.0884,
                          client=client, progress=False)
        with client.as_current():
            pairs = list(king_pairs(z, plan=plan, scratch=_scratch(z, plan, tmp_path / "scratch.zarr"), table_filter=0.0442,
                                    cutoff=0.0884))
            with pytest.raises(ValueError, match="scratch: in this process's memory"):
                next(king_pairs(z, plan=plan, scratch=_scratch(z, plan)))
    assert [path.read_text() for path in local] == [path.read_text() for path in remote]
    for mine, theirs in zip(pairs, expected, strict=True):
        for name in ("first", "second", "n_markers", "hethet", "ibs0", "kinship", "related"):
            np.testing.assert_array_equal(getattr(mine, name), getattr(theirs, name))


def test_a_shared_environment_is_shared_by_each_pair_alone(tmp_path):
    store = api.simulate(tmp_path / "env.zarr", n_samples=60, n_markers=200, h2=[0.0], seed=2, parent_offspring=5,
                         siblings=5, family_environment=1.0, progress=False)  # the trait is the environment alone
    root = zarr.open_group(store, mode="r")
    trait, pairs = root["traits"][:, 0], np.array([p[:2] for p in root.attrs["dask_h2"]["relatives"]], dtype=int)
    assert len(pairs) == 10 and (trait[pairs[:, 0]] == trait[pairs[:, 1]]).all()
    assert np.unique(trait).size == 60 - 10  # everyone else has an environment of their own
