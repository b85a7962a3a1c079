"""The Dask GRM against a plain float64 numpy computation, across chunkings and scalings."""
from __future__ import annotations

import math
import warnings

import dask
import dask.array as da
import numba
import numpy as np
import pytest
import zarr

from dask_h2.errors import ParameterError

from dask_h2.io.convert import simulate_to
from dask_h2.kinship.grm import kinship, partitioned_kinship, sample_columns, symmetrize_upper
from dask_h2.kinship.partition import parse_partition
from dask_h2.checks import parse_memory
from dask_h2.planning import ComputePlan, plan_grm
from dask_h2.kinship.selection import MarkerQC
from dask_h2.kinship.standardize import centre_and_scale, marker_moments


def _genotypes(n=90, m=700, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.02, 0.5, m)
    G = rng.binomial(2, p[:, None], size=(m, n)).astype(np.int8)
    G[rng.random(G.shape) < 0.03] = -1
    G[10] = 0  # monomorphic
    G[20] = -1  # all missing
    G[30] = np.where(rng.random(n) < 0.5, -1, 2)  # monomorphic among observed calls
    return G


def numpy_kinship(G: np.ndarray, scale: str) -> tuple[np.ndarray, int]:
    """Textbook K in float64: mean-impute, centre by 2p, scale, W Wᵀ / M over usable markers."""
    observed = G >= 0
    Gf = np.where(observed, G, np.nan).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the all-missing marker
        mean, sample_sd = np.nanmean(Gf, axis=1), np.nanstd(Gf, axis=1)
    sd = np.sqrt(2 * (mean / 2) * (1 - mean / 2)) if scale == "hwe" else sample_sd
    usable = observed.any(axis=1) & (sample_sd > 1e-6)
    W = (np.where(observed, Gf, mean[:, None])[usable] - mean[usable, None]) / sd[usable, None]
    return W.T @ W / usable.sum(), int(usable.sum())


@pytest.mark.parametrize("scale", ["hwe", "empirical"])
@pytest.mark.parametrize("chunk", [7, 64, 700])
def test_dask_kinship_equals_numpy(scale, chunk):
    G = _genotypes()
    expected, used = numpy_kinship(G, scale)
    result = kinship(
        da.from_array(G, chunks=(chunk, -1)),
        scale=scale,
        plan=ComputePlan(chunk_markers=chunk, split_every=2, dask_threads=1, blas_threads=1),
    )
    assert result.n_markers_used == used and result.n_markers_dropped == G.shape[0] - used == 3
    # the float32 per-chunk products are accumulated in float64
    np.testing.assert_allclose(result.matrix, expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(result.matrix.sum(axis=0), 0.0, atol=1e-12)  # K·1 = 0 restored exactly
    observed_freq = np.array([g[g >= 0].mean() / 2 if (g >= 0).any() else 0.0 for g in G])
    np.testing.assert_allclose(result.allele_frequency, observed_freq, atol=1e-12)


def test_kinship_does_not_depend_on_chunking():
    G = _genotypes(seed=4)
    results = [
        kinship(
            da.from_array(G, chunks=(c, -1)),
            plan=ComputePlan(chunk_markers=c, split_every=3, dask_threads=2, blas_threads=1),
        ).matrix
        for c in (5, 33, 700)
    ]
    for other in results[1:]:
        np.testing.assert_allclose(other, results[0], rtol=0, atol=1e-6)


def test_kinship_rechunks_split_samples():
    G = _genotypes(seed=2)
    split = kinship(da.from_array(G, chunks=(100, 30))).matrix
    whole = kinship(da.from_array(G, chunks=(100, -1))).matrix
    np.testing.assert_array_equal(split, whole)


def test_all_markers_unusable_is_an_error():
    G = np.zeros((5, 10), dtype=np.int8)
    with pytest.raises(ValueError, match="no marker passes"):
        kinship(da.from_array(G, chunks=(2, -1)))


def test_moments_ignore_missing_calls():
    G = np.array([[0, 1, 2, -1], [-1, -1, -1, -1]], dtype=np.int8)
    moments = marker_moments(G)
    np.testing.assert_array_equal(moments, [[3, 3, 5], [0, 0, 0]])
    centre, inverse_scale, status = centre_and_scale(moments, n_samples=4, scale="hwe")
    assert centre[0] == 1.0 and inverse_scale[0] == pytest.approx(1 / np.sqrt(0.5)) and inverse_scale[1] == 0.0


def test_small_store_chunks_are_merged_up_to_the_plan():
    G = _genotypes(seed=6)
    merged = kinship(
        da.from_array(G, chunks=(10, -1)),
        plan=ComputePlan(chunk_markers=300, split_every=2, dask_threads=1, blas_threads=1),
    )
    expected, _ = numpy_kinship(G, "hwe")
    np.testing.assert_allclose(merged.matrix, expected, rtol=0, atol=1e-6)


def test_a_sample_subset_reaches_the_passes_in_c_order(tmp_path):
    """The passes take their chunks through ``to_delayed``, where Dask fuses fancy indexing into the read
    and returned F-ordered blocks, which the row kernels then copied once per tile (a fit on 90,000 of
    100,000 samples ran ~100x slower): the blocks are C-ordered and hold the samples' calls."""
    dosage = zarr.create_array(tmp_path / "calls.zarr", shape=(60, 50), chunks=(20, 50), dtype="int8")
    dosage[:] = _genotypes(seed=7)[:60, :50].astype(np.int8)
    samples = np.arange(50) % 7 != 3
    blocks = dask.compute(*sample_columns(dosage, samples, chunk_markers=40).to_delayed().ravel())
    assert all(block.flags["C_CONTIGUOUS"] for block in blocks)
    np.testing.assert_array_equal(np.concatenate(blocks), dosage[:][:, samples])


def test_plan_fits_the_memory_limit_and_shrinks_with_it():
    n, m = 5123, 319_147
    laptop = plan_grm(n, m, store_chunk=6549)
    assert laptop.peak_bytes(n, m) <= 2 * 2**30 and laptop.chunk_markers == 5 * 6549
    tight = plan_grm(n, m, memory_limit=parse_memory("1.25GiB"), store_chunk=6549)
    assert tight.peak_bytes(n, m) <= 1.25 * 2**30 and tight.chunk_markers == 4 * 6549
    with pytest.raises(ValueError, match="memory limit"):
        plan_grm(n, m, memory_limit=parse_memory("1GiB"))
    assert parse_memory("1.5GiB") == 1.5 * 2**30 and parse_memory("800MB") == 800 * 10**6


def test_peak_model_counts_the_partials_a_depth_first_tree_holds():
    n, m = 10, 800  # 8 chunks of 100 markers: task = int8 chunk + float32 block + float32 product
    task = n * 100 + 4 * n * 100 + 4 * n * n
    assert (
        ComputePlan(chunk_markers=100, split_every=2, dask_threads=1, blas_threads=1).peak_bytes(n, m)
        == task + (3 * 1 + 1) * 8 * n * n
    )  # depth 3
    assert (
        ComputePlan(chunk_markers=100, split_every=8, dask_threads=1, blas_threads=1).peak_bytes(n, m)
        == task + (1 * 7 + 1) * 8 * n * n
    )  # depth 1
    assert (
        ComputePlan(chunk_markers=800, split_every=2, dask_threads=2, blas_threads=1).peak_bytes(n, m)
        == 2 * (n * 800 + 4 * n * 800 + 4 * n * n) + 8 * n * n
    )


def test_symmetrize_upper_in_place_equals_numpy():
    upper = np.triu(np.random.default_rng(9).normal(size=(1100, 1100)))
    expected = upper + np.triu(upper, 1).T
    garbage = upper + np.tril(np.full_like(upper, np.nan), -1)  # SYRK leaves the lower triangle unset
    result = symmetrize_upper(garbage, block=512)
    assert result is garbage
    np.testing.assert_array_equal(result, expected)


def test_marker_qc_and_selection_equal_numpy_on_the_kept_markers():
    G = _genotypes(seed=8)
    observed = G >= 0
    p = np.array([g[g >= 0].mean() / 2 if (g >= 0).any() else 0.0 for g in G])
    maf, missing = np.minimum(p, 1 - p), 1 - observed.mean(axis=1)
    selected = np.ones(G.shape[0], dtype=bool)
    selected[::7] = False
    qc = MarkerQC(maf=0.1, max_missing=0.05)
    keep = selected & (maf >= 0.1) & (missing <= 0.05)
    G_extra = G.copy()
    G_extra[3, :10] = -1  # 11% missing: fails max_missing
    keep[3] = False
    result = kinship(
        da.from_array(G_extra, chunks=(64, -1)),
        qc=qc,
        selected=selected,
        plan=ComputePlan(chunk_markers=64, split_every=2, dask_threads=1, blas_threads=1),
    )
    expected, used = numpy_kinship(G_extra[keep], "hwe")
    assert result.n_markers_used == used == keep.sum()  # markers 10, 20 and 30 fail maf or max_missing too
    np.testing.assert_allclose(result.matrix, expected, rtol=0, atol=1e-6)
    counts = result.marker_counts
    assert sum(counts.values()) == G.shape[0] and counts["used"] == used
    assert counts["excluded"] == (~selected).sum() and counts["max_missing"] >= 1 and counts["maf"] > 0


def test_grm_settings_select_samples_and_markers_in_the_store(tmp_path):
    from dask_h2 import api
    from dask_h2.kinship.selection import Selection
    from dask_h2.io.simulate import SimulationDesign

    store = simulate_to(
        tmp_path / "qc.zarr", SimulationDesign(n_samples=120, n_markers=800, h2=(0.5,), seed=9), progress=False
    )
    (tmp_path / "remove.txt").write_text("ind1 ind1\nind7 ind7\n")
    (tmp_path / "exclude.txt").write_text("\n".join(f"snp{j}" for j in range(1, 101)) + "\n")
    settings = Selection(qc=MarkerQC(maf=0.05), remove=tmp_path / "remove.txt", exclude=tmp_path / "exclude.txt")
    result = api.grm(store, selection=settings, progress=False)
    assert result.eigen.values.size == 118 and 0 not in result.sample_index and 6 not in result.sample_index
    assert result.marker_counts["excluded"] == 100 and result.marker_counts["maf"] > 0
    report = api.fit(store, method="REML", selection=settings, progress=False)
    assert report.n_samples == 118 and report.extra["n_samples_removed"] == 2 and report.traits[0].n == 118
    assert api.grm(store, progress=False).eigen.values.size == 120  # other settings: recomputed, not reused


def test_kernels_compile_uncached_where_numba_finds_no_writable_cache(monkeypatch):
    from dask_h2.kinship import standardize

    real_njit = numba.njit

    def njit_without_cache_folder(**options):  # what numba raises in a read-only container
        if options.get("cache"):
            raise RuntimeError("cannot cache function 'f': no locator available for file 'standardize.py'")
        return real_njit(**options)

    monkeypatch.setattr(numba, "njit", njit_without_cache_folder)
    add_one = standardize.compiled(lambda x: x + 1)
    assert add_one(41) == 42 and hasattr(add_one, "py_func")


def test_partitioned_kinship_equals_numpy_per_part():
    G = _genotypes(n=80, m=900, seed=6)
    partition = parse_partition("maf:0.0,0.1,0.25,0.5", np.array([f"v{j}" for j in range(G.shape[0])], dtype=object))
    result = partitioned_kinship(
        da.from_array(G, chunks=(64, -1)),
        partition,
        plan=ComputePlan(chunk_markers=128, split_every=2, dask_threads=1, blas_threads=1, parts=3),
    )
    observed = np.where(G >= 0, G, 0).sum(axis=1) / np.maximum((G >= 0).sum(axis=1), 1) / 2
    maf = np.minimum(observed, 1 - observed)
    bins = [(maf >= 0.0) & (maf < 0.1), (maf >= 0.1) & (maf < 0.25), (maf >= 0.25) & (maf <= 0.5)]
    assert result.part_names == ("maf0-0.1", "maf0.1-0.25", "maf0.25-0.5")
    for k, in_bin in enumerate(bins):
        expected, used = numpy_kinship(G[in_bin], "hwe")
        assert result.part_markers[k] == used
        np.testing.assert_allclose(result.matrices[k], expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(result.combined(), kinship(da.from_array(G, chunks=(64, -1))).matrix, atol=1e-6)
    assert result.marker_counts["outside_partition"] == 0 and result.n_markers_dropped == 3


def test_partition_by_file_leaves_unlisted_markers_out_and_refuses_an_empty_part(tmp_path):
    G = _genotypes(n=60, m=300, seed=7)
    ids = np.array([f"v{j}" for j in range(300)], dtype=object)
    (tmp_path / "parts.txt").write_text("".join(f"v{j} {'odd' if j % 2 else 'even'}\n" for j in range(250)))
    result = partitioned_kinship(da.from_array(G, chunks=(50, -1)), parse_partition(tmp_path / "parts.txt", ids))
    for k, parity in enumerate((0, 1)):  # "even" first: v0 is listed first
        expected, used = numpy_kinship(G[:250][parity::2], "hwe")
        np.testing.assert_allclose(result.matrices[k], expected, rtol=0, atol=1e-6)
        assert result.part_markers[k] == used
    assert result.marker_counts["outside_partition"] == 50
    with pytest.raises(ParameterError, match="^partition: maf0.45-0.5 has no marker passing the filters"):
        partitioned_kinship(da.from_array(np.full((20, 10), 1, np.int8) + (np.arange(10) < 5), chunks=(5, -1)),
                            parse_partition("maf:0.1,0.45,0.5", ids[:20]))


def test_the_plan_counts_every_part():
    one, five = (
        ComputePlan(chunk_markers=4096, split_every=2, dask_threads=1, blas_threads=1, parts=parts).peak_bytes(
            3000, 100_000
        )
        for parts in (1, 5)
    )
    squares = 4 * 3000**2 + (math.ceil(math.log(25, 2)) + 1) * 8 * 3000**2
    assert five - one == 4 * squares
    assert plan_grm(3000, 100_000, memory_limit=parse_memory("2GiB"), parts=5).peak_bytes(
        3000, 100_000
    ) <= parse_memory("2GiB")
