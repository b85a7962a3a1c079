"""The PCs of the streamed paths (moments, MC-REML): the top eigenvectors of K from sketch passes over
evenly spaced marker chunks (:mod:`dask_h2.kinship.sketch`), cached in ``STORE/rhe`` with the key of what made them
(the samples, markers, QC, scale and PC settings), so that later fits of the same data skip them."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import dask
import dask.array as da
import numpy as np

from dask_h2.cluster import compute
from dask_h2.kinship.grm import chunk_marker_table, sum_partials
from dask_h2.kinship.selection import MarkerQC, Scale, Selection, cache_key
from dask_h2.kinship.sketch import gaussian_start, nystrom_eigen, orthonormal, sketch_width
from dask_h2.kinship.standardize import USED
from dask_h2.kinship.streamed import left_products, right_products
from dask_h2.kinship.tasks import chunk_bounds, shared, single_threaded_blas
from dask_h2.planning import ComputePlan
from dask_h2.progress import dask_progress
from dask_h2.store import cached_group, mark_group_complete

RHE_GROUP = "rhe"  # in the store: the PCs of the streamed paths (named after the first), with their key
PC_SEED = 0  # the sketch's own seed: the PCs are the same whatever seed the probes use
log = logging.getLogger("dask_h2")


@dataclass(frozen=True, kw_only=True)
class PrincipalComponents:
    """The top PCs (n, k) of K with their eigenvalues (k,), from ``n_markers`` markers read in
    ``passes`` sketch passes (0 when read from the store's cache)."""

    vectors: np.ndarray
    values: np.ndarray
    n_markers: int
    passes: int


def _pc_chunks(n_chunks: int, chunk_markers: int, pc_markers: int) -> list[int]:
    """Evenly spaced chunks holding about ``pc_markers`` markers (all when 0 or when that is more)."""
    wanted = n_chunks if pc_markers == 0 else min(n_chunks, max(1, -(-pc_markers // chunk_markers)))
    return sorted({int(i * n_chunks // wanted) for i in range(wanted)})


def principal_components(store: str | Path, dosage: da.Array, *, variants: np.ndarray, selection: Selection,
                         samples: np.ndarray, pcs: int, passes: int, markers: int, plan: ComputePlan,
                         progress: bool = True) -> PrincipalComponents:
    """The top ``pcs`` PCs of K over the ``samples`` (bool) of ``store`` from int8 ``dosage`` (M, n) of those
    samples, its ``variants`` (bool) selected before QC: from the store's cache, or computed by ``passes``
    sketch passes over about ``markers`` markers (0 = all) and cached (in memory only, said in one line,
    when the store cannot be written)."""
    n = dosage.shape[1]
    if pcs == 0:
        return PrincipalComponents(vectors=np.zeros((n, 0)), values=np.zeros(0), n_markers=0, passes=0)
    key = {**cache_key(selection, samples, variants=variants), "pcs": pcs, "pc_passes": passes, "pc_markers": markers,
           "pc_seed": PC_SEED}
    with cached_group(store, RHE_GROUP, key=key) as cache:
        if cache.reusable is not None:
            log.info(f"reusing the PCs in {store}/{RHE_GROUP}")
            return PrincipalComponents(vectors=cache.reusable["pcs"][:], values=cache.reusable["pc_eigenvalues"][:],
                                       n_markers=int(cache.reusable.attrs["n_markers"]), passes=0)
        components = _sketch(dosage, variants=variants, selection=selection, pcs=pcs, passes=passes, markers=markers,
                             plan=plan, progress=progress)
        try:
            group = cache.create(n_markers=components.n_markers)
            group.create_array("pcs", data=components.vectors, dimension_names=("rhe_samples", "pcs"))
            group.create_array("pc_eigenvalues", data=components.values, dimension_names=("pcs",))
            mark_group_complete(group)
        except OSError as exc:
            log.warning(f"could not cache the PCs in {store}/{RHE_GROUP} ({exc.strerror or exc}); they are used from "
                        "memory")
        return components


def _sketch(dosage: da.Array, *, variants: np.ndarray, selection: Selection, pcs: int, passes: int, markers: int,
            plan: ComputePlan, progress: bool) -> PrincipalComponents:
    """The top ``pcs`` PCs of K by ``passes`` sketch passes over about ``markers`` markers."""
    n = dosage.shape[1]
    chunks = _pc_chunks(dosage.numblocks[0], plan.chunk_markers, markers)
    bounds = chunk_bounds(dosage.chunks[0])
    subset = da.concatenate([dosage.blocks[t] for t in chunks])
    selected = np.concatenate([variants[slice(*bounds[t])] for t in chunks])
    omega = gaussian_start(n, sketch_width(pcs, n), seed=PC_SEED)
    sketch = None
    for _ in range(passes):
        omega = omega if sketch is None else orthonormal(sketch)
        sketch = sketch_pass(
            subset, selected=selected, scale=selection.scale, qc=selection.qc, plan=plan, omega=omega, progress=progress
        )
    values, vectors = nystrom_eigen(omega, sketch, n_pcs=pcs)
    used = int(selected.sum())
    return PrincipalComponents(vectors=vectors, values=values / max(used, 1), n_markers=used, passes=passes)


@single_threaded_blas
def _sketch_chunk(dosage: np.ndarray, selected: np.ndarray, scale: Scale, qc: MarkerQC,
                  omega: np.ndarray) -> np.ndarray:
    table = chunk_marker_table(dosage, selected=selected[:, None], scale=scale, qc=qc)
    used = table[:, 1] == USED
    order = np.flatnonzero(used)  # the used rows, read in place (no copy of the chunk)
    centre, inverse_scale = table[used, 2], table[used, 3]
    left = left_products(dosage, centre=centre, inverse_scale=inverse_scale, right=omega, order=order)[0]
    return right_products(
        dosage, centre=centre, inverse_scale=inverse_scale, left=left, groups=[slice(0, left.shape[0])], order=order
    )[0][None]


def sketch_pass(dosage: da.Array, *, selected: np.ndarray, scale: Scale, qc: MarkerQC, plan: ComputePlan,
                omega: np.ndarray, progress: bool = True) -> np.ndarray:
    """Y = Σ_{m used} w_m w_mᵀ Ω (n, q) float64 over int8 ``dosage`` (M, n) chunked along markers only,
    ``selected`` (M,) bool."""
    bounds = chunk_bounds(dosage.chunks[0])
    omega_shared = shared(np.ascontiguousarray(omega, dtype=np.float32))
    task = dask.delayed(_sketch_chunk, pure=True)
    shape = (1, dosage.shape[1], omega.shape[1])
    sketches = da.concatenate([da.from_delayed(task(block, selected[a:b], scale, qc, omega_shared), shape, np.float32)
                               for block, (a, b) in zip(dosage.to_delayed().ravel(), bounds)])
    with dask_progress("sketch pass", enabled=progress):
        return compute(sum_partials(sketches, plan.split_every)[0], plan=plan)[0]
