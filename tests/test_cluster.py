"""dask-h2 on a real Dask cluster (deploy/local-cluster.sh on 127.0.0.1): same answers as the
local threaded run, survival of a killed worker, and a store on an S3-compatible server."""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import cloudpickle
import dask.array as da
import numpy as np
import pytest
import zarr
from distributed import Client

from dask_h2 import api
from dask_h2.cluster import HeapAllocations, active_client
from dask_h2.io.sources import write_store
from dask_h2.kinship.grm import kinship
from dask_h2.planning import ComputePlan, plan_grm
from dask_h2.moments.settings import MomentsSettings
from dask_h2.io.simulate import SimulationDesign, simulate
from dask_h2.store import open_store
from local_cluster import deployed_cluster, missing_tools

N_SAMPLES, N_MARKERS, STORE_CHUNK = 200, 3000, 250
# bytes: the largest chunks that fit are 750 markers (4 chunks, a reduction tree of fan-in 2),
# as the 2-worker cluster spreads them (two tasks per worker thread)
MEMORY_LIMIT = 2_000_000
# Each float32 SYRK's rounding depends on the BLAS thread count, so the workers get the local run's.
BLAS_THREADS = plan_grm(N_SAMPLES, N_MARKERS).blas_threads
TIMEOUT = 120  # seconds for any one computation on the cluster
KILL_PLAN = ComputePlan(chunk_markers=STORE_CHUNK, split_every=2, dask_threads=1, blas_threads=BLAS_THREADS)
MOMENTS = {"method": "RHE", "moments": MomentsSettings(n_blocks=20, seed=5), "partition": "maf:0,0.2,0.5"}
MC_REML = {**MOMENTS, "method": "MC-REML"}

pytestmark = [pytest.mark.slow,  # the second step of .ci/run (pytest -m slow)
              pytest.mark.skipif(missing_tools() is not None, reason=f"no local cluster: {missing_tools()}")]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "sim.zarr"
    write_store(
        simulate(SimulationDesign(n_samples=N_SAMPLES, n_markers=N_MARKERS, h2=(0.5, 0.2), seed=3)),
        path,
        chunk_variants=STORE_CHUNK,
        progress=False,
    )
    return path


@pytest.fixture(scope="module")
def local(store, tmp_path_factory):
    """On the local threaded scheduler (before any client exists: a client would be used):
    K and the fit of a copy of the store, and K by the plan of the worker-failure test."""
    assert active_client() is None
    copy = shutil.copytree(store, tmp_path_factory.mktemp("local") / "sim.zarr")
    grm = api.grm(copy, memory_limit=MEMORY_LIMIT, progress=False)
    return grm.kinship[:], api.fit(copy, progress=False), kinship(dosage_of(store), plan=KILL_PLAN).matrix


@pytest.fixture(scope="module")
def s3():
    """An S3-compatible server (moto) on 127.0.0.1 and the credentials that reach it; None
    when moto[server] or s3fs is missing (only the S3 test needs them)."""
    try:
        import s3fs  # noqa: F401
        from moto.server import ThreadedMotoServer
    except ImportError:
        yield None
        return
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://{host}:{port}"}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        yield env
    server.stop()


def dosage_of(store) -> da.Array:
    return da.from_zarr(zarr.open_group(store, mode="r")["call_dosage"])


@pytest.fixture(scope="module")
def local_moments(store, tmp_path_factory, local):
    """The moments fit (randomized Haseman–Elston) of a copy of the store on local threads."""
    assert active_client() is None
    copy = shutil.copytree(store, tmp_path_factory.mktemp("local_moments") / "sim.zarr")
    return api.fit(copy, **MOMENTS, pcs=3, progress=False)


@pytest.fixture(scope="module")
def local_mc_reml(store, tmp_path_factory, local):
    """The MC-REML fit of a copy of the store on local threads."""
    assert active_client() is None
    copy = shutil.copytree(store, tmp_path_factory.mktemp("local_mc_reml") / "sim.zarr")
    return api.fit(copy, **MC_REML, pcs=3, progress=False)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, s3, local, local_moments, local_mc_reml):
    """Scheduler + 2 worker processes of 1 thread, with the S3 credentials in their environment."""
    with deployed_cluster(tmp_path_factory.mktemp("cluster"), workers=2, blas_threads=BLAS_THREADS,
                          env=s3 or {}) as deployed:
        with Client(deployed.address, timeout=30) as client:
            yield deployed, client


def test_grm_and_fit_on_the_cluster_equal_the_local_run(cluster, store, local, tmp_path, capsys):
    _, client = cluster
    copy = shutil.copytree(store, tmp_path / "sim.zarr")
    result = api.grm(copy, memory_limit=MEMORY_LIMIT, client=client)
    assert "GRM" in capsys.readouterr().err  # the progress bar follows the cluster's tasks
    report = api.run(copy, tmp_path / "out", progress=False, client=client)  # a store: run = fit
    assert_same(result.kinship[:], report, *local[:2])


def test_moments_fit_on_the_cluster_equals_the_local_run(cluster, store, local_moments, tmp_path):
    _, client = cluster
    copy = shutil.copytree(store, tmp_path / "sim.zarr")
    report = api.fit(copy, **MOMENTS, pcs=3, progress=False, client=client)
    assert not (copy / "scratch").exists()  # the workers' scratch is gone
    plugins = client.run(lambda dask_worker: list(dask_worker.plugins))
    assert all(HeapAllocations.name in names for names in plugins.values())  # glibc's mmap threshold raised
    for ours, theirs in zip(report.traits, local_moments.traits):
        for field in ("h2", "h2_se", "sigma_g2", "sigma_e2", "vp"):
            assert getattr(ours, field) == pytest.approx(getattr(theirs, field), rel=1e-12), field  # same operations


def test_mc_reml_on_the_cluster_equals_the_local_run(cluster, store, local_mc_reml, tmp_path):
    """The genotypes persisted on the 2 workers; every pass the same operations as on local threads."""
    _, client = cluster
    copy = shutil.copytree(store, tmp_path / "sim.zarr")
    report = api.fit(copy, **MC_REML, pcs=3, progress=False, client=client)
    assert report.extra["passes_over_genotypes"] == local_mc_reml.extra["passes_over_genotypes"]
    for ours, theirs in zip(report.traits, local_mc_reml.traits, strict=True):
        assert ours.converged and theirs.converged
        for field in ("h2", "h2_se", "sigma_g2", "sigma_e2", "vp"):
            assert getattr(ours, field) == pytest.approx(getattr(theirs, field), rel=1e-9), field


def test_cli_uses_the_scheduler_from_the_environment(cluster, store, tmp_path):
    deployed, _ = cluster
    copy = shutil.copytree(store, tmp_path / "sim.zarr")
    env = {**os.environ, "DASK_SCHEDULER_ADDRESS": deployed.address}
    command = [sys.executable, "-m", "dask_h2.cli", "--quiet", "fit", str(copy), "--out", str(tmp_path / "r")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    assert f"Dask cluster {deployed.address}: 2 workers" in done.stderr and "dashboard http" in done.stderr
    assert (tmp_path / "r.json").exists()


def test_a_worker_killed_during_the_grm_leaves_the_answer_unchanged(store, local, tmp_path):
    slow = dosage_of(store).map_blocks(lambda block: (time.sleep(0.3), block)[1])  # 12 chunks: ~2 s on 2 workers
    with deployed_cluster(tmp_path, workers=2, blas_threads=BLAS_THREADS) as deployed, \
            Client(deployed.address, timeout=30) as client, ThreadPoolExecutor(1) as pool:
        victim = address_of(client, "worker-2")
        job = pool.submit(kinship, slow, plan=KILL_PLAN)
        deadline = time.monotonic() + TIMEOUT
        while not client.has_what().get(victim) and not job.done() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not job.done(), "the GRM finished before worker-2 held a result"
        deployed.kill_worker(2)
        result = job.result(timeout=TIMEOUT).matrix
        assert victim not in client.nthreads() and len(client.nthreads()) == 1
    np.testing.assert_allclose(result / np.abs(local[2]).max(), local[2] / np.abs(local[2]).max(), rtol=0, atol=1e-10)


def test_a_worker_killed_during_mc_reml_leaves_the_estimate_unchanged(store, local_mc_reml, tmp_path):
    """worker-2 SIGKILLed while it runs a task of a CG solve (after the first REML iteration): its persisted
    genotype chunks are read again by worker-1 and the fit ends where the local run does."""
    copy = shutil.copytree(store, tmp_path / "sim.zarr")
    with deployed_cluster(tmp_path / "run", workers=2, blas_threads=BLAS_THREADS) as deployed, \
            Client(deployed.address, timeout=30) as client, ThreadPoolExecutor(1) as pool:
        victim = address_of(client, "worker-2")
        armed, killed = [], []

        def kill_when_busy() -> None:
            deadline = time.monotonic() + TIMEOUT
            while not client.processing().get(victim) and time.monotonic() < deadline:
                time.sleep(0.002)
            deployed.kill_worker(2)
            killed.append(time.monotonic())

        class FirstIteration(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if "iteration 1," in record.getMessage() and not armed:
                    armed.append(pool.submit(kill_when_busy))

        handler, logger = FirstIteration(), logging.getLogger("dask_h2")
        level = logger.level
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        try:
            report = api.fit(copy, **MC_REML, pcs=3, progress=False, client=client)
            ended = time.monotonic()
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)
        armed[0].result(timeout=TIMEOUT)
        assert killed[0] < ended, "the fit ended before worker-2 was killed"
        assert victim not in client.nthreads() and len(client.nthreads()) == 1
    assert report.extra["passes_over_genotypes"] == local_mc_reml.extra["passes_over_genotypes"]
    for ours, theirs in zip(report.traits, local_mc_reml.traits, strict=True):
        assert ours.converged
        for field in ("h2", "h2_se", "sigma_g2", "sigma_e2", "vp"):
            assert getattr(ours, field) == pytest.approx(getattr(theirs, field), rel=1e-9), field


def test_store_on_s3_is_read_by_the_workers(cluster, store, local, s3):
    if s3 is None:
        pytest.skip("moto[server] or s3fs is not installed (pip install 'moto[server]' s3fs)")
    import s3fs

    _, client = cluster
    fs = s3fs.S3FileSystem()
    fs.mkdir("dask-h2")
    fs.put(str(store), "dask-h2/sim.zarr", recursive=True)
    url = "s3://dask-h2/sim.zarr"
    dosage = da.from_zarr(open_store(url)["call_dosage"])
    graph_bytes = len(cloudpickle.dumps(dict(dosage.__dask_graph__())))
    assert graph_bytes < N_SAMPLES * N_MARKERS / 20  # chunks are read inside the tasks, not shipped with the graph
    result = api.grm(url, memory_limit=MEMORY_LIMIT, progress=False, client=client)
    assert_same(result.kinship[:], api.fit(url, progress=False, client=client), *local[:2])
    tiled = api.grm(url, progress=False, tile=64, recompute=True, client=client)  # the workers write K's tiles
    assert fs.exists("dask-h2/sim.zarr/grm/kinship/c/3/3") and tiled.kinship.chunks == (64, 64)
    np.testing.assert_allclose(tiled.kinship[:], local[0], rtol=0, atol=1e-6)  # float32 products, other blocking


def address_of(client: Client, name: str) -> str:
    """The address of the worker the deploy script named ``name``."""
    return next(address for address, worker in client.scheduler_info()["workers"].items() if worker["name"] == name)


def assert_same(kinship_matrix, report, local_kinship, local_report):
    """K within 1e-10 relative (to its largest entry) and h² within 1e-8 of the local run."""
    scale = np.abs(local_kinship).max()
    np.testing.assert_allclose(kinship_matrix / scale, local_kinship / scale, rtol=0, atol=1e-10)
    np.testing.assert_allclose([t.h2 for t in report.traits], [t.h2 for t in local_report.traits], rtol=0, atol=1e-8)
