"""K built in sample tiles (dask_h2.kinship.tiled) equals the untiled GRM, and the plans that choose it."""
from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import zarr

from dask_h2 import api, planning
from dask_h2.io.sources import write_store
from dask_h2.kinship.grm import kinship, partitioned_kinship
from dask_h2.kinship.partition import parse_partition
from dask_h2.checks import parse_memory
from dask_h2.planning import ComputePlan, TilePlan, grm_plan, plan_grm, plan_tiles
from dask_h2.io.simulate import SimulationDesign, simulate
from dask_h2.kinship.selection import MarkerQC
from dask_h2.kinship.tiled import tiled_kinship

FLOAT32 = 1e-6  # the tiles' float32 products are blocked differently from the untiled SYRK


@pytest.fixture(scope="module")
def dosage(tmp_path_factory):
    rng = np.random.default_rng(5)
    n, m = 150, 1300
    G = rng.binomial(2, rng.uniform(0.01, 0.5, m)[:, None], size=(m, n)).astype(np.int8)
    G[rng.random(G.shape) < 0.03] = -1
    G[7] = 0  # monomorphic
    root = zarr.open_group(tmp_path_factory.mktemp("tiled") / "g.zarr", mode="w")
    return root.create_array("call_dosage", data=G, chunks=(100, n))


@pytest.mark.parametrize("tile, chunk", [(64, 256), (150, 1300), (41, 100)])
def test_tiled_equals_untiled(dosage, tile, chunk):
    rng = np.random.default_rng(tile)
    samples = np.sort(rng.choice(dosage.shape[1], 120, replace=False))
    selected = rng.random(dosage.shape[0]) < 0.8
    qc = MarkerQC(maf=0.05, max_missing=0.5)
    out = zarr.create_array(zarr.storage.MemoryStore(), shape=(120, 120), chunks=(tile, tile), dtype="float64")
    tiled = tiled_kinship(
        dosage,
        out,
        plan=TilePlan(tile=tile, chunk_markers=chunk, dask_threads=1, blas_threads=1),
        scale="empirical",
        qc=qc,
        samples=samples,
        selected=selected,
    )
    untiled = kinship(
        da.from_zarr(dosage)[:, samples],
        scale="empirical",
        plan=ComputePlan(chunk_markers=chunk, split_every=2, dask_threads=1, blas_threads=1),
        qc=qc,
        selected=selected,
    )
    np.testing.assert_allclose(tiled.matrix, untiled.matrix, rtol=0, atol=FLOAT32)
    np.testing.assert_allclose(tiled.matrix.sum(axis=0), 0.0, atol=1e-12)  # double-centred tile by tile
    np.testing.assert_array_equal(out[:], tiled.matrix)
    assert tiled.marker_counts == untiled.marker_counts and tiled.n_markers_used == untiled.n_markers_used
    np.testing.assert_array_equal(tiled.allele_frequency, untiled.allele_frequency)


def test_grm_of_a_store_in_tiles_equals_the_untiled_grm(tmp_path):
    store = tmp_path / "sim.zarr"
    write_store(
        simulate(SimulationDesign(n_samples=180, n_markers=1500, h2=(0.5,), seed=2)),
        store,
        chunk_variants=300,
        progress=False,
    )
    untiled = api.grm(store, progress=False)
    expected, report = untiled.kinship[:], api.fit(store, progress=False)
    tiled = api.grm(store, progress=False, tile=64, recompute=True)
    assert tiled.kinship.chunks == (64, 64)
    np.testing.assert_allclose(tiled.kinship[:], expected, rtol=0, atol=FLOAT32)
    np.testing.assert_allclose(tiled.eigen.values, untiled.eigen.values, rtol=0, atol=1e-4)
    assert api.grm(store, progress=False).kinship.chunks == (64, 64)  # the tiled GRM is the cache now
    np.testing.assert_allclose([t.h2 for t in api.fit(store, progress=False).traits],
                               [t.h2 for t in report.traits], rtol=0, atol=1e-4)


def test_plans_switch_to_tiles_when_the_untiled_grm_does_not_fit():
    n, m = 20_000, 100_000
    assert isinstance(grm_plan(2000, m), ComputePlan)
    plan = grm_plan(n, m)  # 2 GiB: the untiled GRM needs at least two n × n float64 buffers, 6.4 GB
    assert isinstance(plan, TilePlan) and plan.tile == 6144 and plan.peak_bytes(n) <= 2 * 2**30
    assert isinstance(grm_plan(2000, m, tile=500), TilePlan) and grm_plan(2000, m, tile=500).tile == 500
    small = plan_tiles(n, memory_limit=parse_memory("300MB"), dask_threads=2)
    assert small.peak_bytes(n) <= parse_memory("300MB") and small.tile < plan.tile
    with pytest.raises(ValueError, match="memory limit"):
        plan_tiles(n, memory_limit=parse_memory("10MB"))
    with pytest.raises(ValueError, match="tiles of 4096"):
        plan_tiles(n, memory_limit=parse_memory("300MB"), tile=4096)


def test_cluster_plans_spread_the_chunks_and_still_fit_the_budget(monkeypatch):
    class FourWorkers:
        def nthreads(self):
            return {f"tcp://worker-{i}": 1 for i in range(4)}

    monkeypatch.setattr(planning, "active_client", lambda: FourWorkers())
    monkeypatch.setattr(planning, "worker_budget", lambda client: (2 * 2**30, 1))
    spread = grm_plan(2000, 100_000)  # two tasks per worker thread: 12,500 markers, up to a multiple of 256
    assert isinstance(spread, ComputePlan) and spread.chunk_markers == 12_544
    assert spread.peak_bytes(2000, 100_000) <= 2 * 2**30
    deeper = grm_plan(8000, 100_000)  # the spread chunks' deeper tree would need 2.3 GiB: tiles instead
    assert isinstance(deeper, TilePlan) and deeper.peak_bytes(8000) <= 2 * 2**30
    with pytest.raises(ValueError, match="no markers"):
        plan_grm(10, 0)


def test_tiled_parts_equal_untiled_parts(dosage):
    partition = parse_partition("maf:0.0,0.2,0.5", np.array([f"v{j}" for j in range(dosage.shape[0])], dtype=object))
    out = zarr.create_array(zarr.storage.MemoryStore(), shape=(2, 150, 150), chunks=(1, 64, 64), dtype="float64")
    tiled = tiled_kinship(
        dosage,
        out,
        plan=TilePlan(tile=64, chunk_markers=256, dask_threads=1, blas_threads=1, parts=2),
        partition=partition,
    )
    untiled = partitioned_kinship(
        da.from_zarr(dosage),
        partition,
        plan=ComputePlan(chunk_markers=256, split_every=2, dask_threads=1, blas_threads=1, parts=2),
    )
    np.testing.assert_allclose(tiled.matrices, untiled.matrices, rtol=0, atol=FLOAT32)
    np.testing.assert_array_equal(tiled.part_markers, untiled.part_markers)
    assert tiled.marker_counts == untiled.marker_counts
