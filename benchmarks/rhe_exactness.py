"""The moments estimate with many probe vectors against the exact Haseman–Elston solution.

Usage: python benchmarks/rhe_exactness.py [--samples 2000] [--markers 8000] [--probes 2000] [--seeds 4]
       [--workdir /tmp/dask-h2-rhe-exactness]

Simulates a store (3 subpopulations, 1 % missing calls, h² = 0.5) and a quantitative
covariate, then for 1 component and for 3 MAF components, each without fixed effects
beyond the intercept and with the covariate and 10 PCs:

- exact HE: every K_k (n × n) formed with numpy from the genotypes, P from the same fixed
  effects (PCs read from the store's moments cache), and the normal equations with exact
  traces tr(P K_k P K_l), tr(P K_k);
- the streamed moments estimate (`dask_h2.fit(..., method="RHE")`) with B = ``--probes`` probe vectors,
  for ``--seeds`` seeds: its mean and the Monte-Carlo SD over seeds.

Prints σ²_k, σ²_e and h² of both and z = (mean of RHE − exact) / (MC SD / √seeds), which is
N(0, 1) when the randomized estimate is centred on the exact one.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import zarr

from dask_h2.io.convert import simulate_to
from dask_h2 import api
from dask_h2.moments.settings import MomentsSettings
from dask_h2.kinship.pcs import RHE_GROUP
from dask_h2.io.simulate import SimulationDesign
from dask_h2.store import is_complete

PARTITION = "maf:0,0.1,0.25,0.5"


def standardized(store: Path) -> tuple[np.ndarray, np.ndarray]:
    """W (M_used, n) standardized by sqrt(2p(1 − p)), missing calls at 0, and each marker's MAF."""
    g = zarr.open_group(store, mode="r")["call_dosage"][:].astype(np.float64)
    observed = g >= 0
    p = np.where(observed, g, 0).sum(1) / observed.sum(1) / 2
    keep = (p > 0) & (p < 1)
    w = np.where(observed, g - 2 * p[:, None], 0.0)[keep] / np.sqrt(2 * p * (1 - p))[keep, None]
    return w, np.minimum(p, 1 - p)[keep]


def exact_he(w: np.ndarray, component: np.ndarray, y: np.ndarray, X: np.ndarray) -> np.ndarray:
    """σ²_1..σ²_K, σ²_e of Haseman–Elston (method of moments) with exact traces."""
    n, c = X.shape
    P = np.eye(n) - X @ np.linalg.solve(X.T @ X, X.T)
    kinships = [w[component == k].T @ w[component == k] / (component == k).sum() for k in range(component.max() + 1)]
    projected = [P @ K @ P for K in kinships]
    size = len(kinships)
    lhs, rhs = np.empty((size + 1, size + 1)), np.empty(size + 1)
    for k in range(size):
        for l in range(size):
            lhs[k, l] = np.sum(projected[k] * kinships[l])
        lhs[k, size] = lhs[size, k] = np.trace(projected[k])
        rhs[k] = y @ projected[k] @ y
    lhs[size, size], rhs[size] = n - c, y @ P @ y
    return np.linalg.solve(lhs, rhs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--markers", type=int, default=8000)
    parser.add_argument("--probes", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/dask-h2-rhe-exactness"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    store = args.workdir / f"sim_{args.samples}x{args.markers}.zarr"
    if not is_complete(store):
        simulate_to(
            store,
            SimulationDesign(n_samples=args.samples, n_markers=args.markers, h2=(0.5,), seed=21),
            overwrite=True,
            progress=False,
        )
    covariate = np.random.default_rng(4).normal(size=args.samples)
    qcovar = args.workdir / "covariate.txt"
    qcovar.write_text("".join(f"ind{i + 1} ind{i + 1} {v}\n" for i, v in enumerate(covariate)))
    w, maf = standardized(store)
    y = zarr.open_group(store, mode="r")["traits"][:, 0]
    print(f"{args.samples} samples x {w.shape[0]} markers, B = {args.probes}, {args.seeds} seeds")
    for partition in (None, PARTITION):
        edges = [0.0, 0.1, 0.25, 0.5] if partition else [0.0, 0.5]
        component = np.clip(np.searchsorted(edges, maf, side="right") - 1, 0, len(edges) - 2)
        for pcs, with_covariate in ((0, False), (10, True)):
            estimates, walls = [], []
            for seed in range(1, args.seeds + 1):
                # 20 jackknife blocks (the least allowed): the point estimate is what is compared, and the blocks' sums
                # kept in the scratch grow as J·K·n·B
                settings = MomentsSettings(n_probes=args.probes, n_blocks=20, seed=seed)
                start = time.perf_counter()
                fit = api.fit(store, method="RHE", moments=settings, partition=partition, pcs=pcs,
                              qcovar=qcovar if with_covariate else None, progress=False).traits[0]
                walls.append(time.perf_counter() - start)
                estimates.append([c.sigma2 for c in fit.components] + [fit.sigma_e2, fit.h2])
            estimates = np.array(estimates)
            columns = [np.ones((args.samples, 1))]
            if pcs:  # the PCs the fits used, from the store's cache
                columns.append(zarr.open_group(store, mode="r")[RHE_GROUP]["pcs"][:])
            if with_covariate:
                columns.append(covariate[:, None])
            exact = exact_he(w, component, y, np.hstack(columns))
            exact = np.append(exact, exact[:-1].sum() / exact.sum())
            mc_sd = estimates.std(axis=0, ddof=1)
            z = (estimates.mean(axis=0) - exact) / (mc_sd / np.sqrt(len(estimates)))
            names = [f"s2_{k + 1}" for k in range(len(edges) - 1)] + ["s2_e", "h2"]
            print(f"\n{len(edges) - 1} component(s), {'covariate + 10 PCs' if with_covariate else 'intercept only'}"
                  f" (RHE {np.median(walls):.1f} s per fit)")
            print(f"{'':8}{'exact HE':>12}{'RHE mean':>12}{'MC SD':>11}{'z':>8}")
            for j, name in enumerate(names):
                print(f"{name:8}{exact[j]:>12.6f}{estimates[:, j].mean():>12.6f}{mc_sd[j]:>11.2e}{z[j]:>8.2f}",
                      flush=True)


if __name__ == "__main__":
    main()
