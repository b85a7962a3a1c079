"""Dense bivariate REML (two traits observed on different samples): wall of one pair's fit (the
fit and the null fits of its LRTs) against the hardware limit of one step, a Cholesky factor and
inverse of V (N = n₁ + n₂ observations), timed in the same run; prints the steps and the ratio.

    python benchmarks/bivariate_dense.py --observations 5000 --common 0.5
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.linalg

from dask_h2.greml.bivariate import fit_bivariate
from dask_h2.greml.pair_model import dense_pair_model
from dask_h2.kinship.eigen import eigendecompose


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--observations", type=int, default=5000, help="N = n1 + n2")
    parser.add_argument("--common", type=float, default=0.5, help="fraction of each trait's samples with both")
    parser.add_argument("--markers", type=int, default=4000)
    args = parser.parse_args()
    rng = np.random.default_rng(3)
    per_trait = args.observations // 2
    shared = int(args.common * per_trait)
    n = 2 * per_trait - shared  # samples with either trait
    genotypes = rng.binomial(2, rng.uniform(0.05, 0.5, args.markers), size=(n, args.markers)).astype(np.float64)
    genotypes = (genotypes - genotypes.mean(0)) / np.maximum(genotypes.std(0), 1e-12)
    K = genotypes @ genotypes.T / args.markers
    L = np.linalg.cholesky(np.kron([[0.5, 0.25], [0.25, 0.5]], K) + np.kron([[0.5, 0.1], [0.1, 0.5]], np.eye(n))
                           + 1e-9 * np.eye(2 * n))
    Y = (L @ rng.standard_normal(2 * n)).reshape(2, n).T
    Y[per_trait:, 0] = np.nan  # trait 1 on the first n1 samples, trait 2 on the last n2
    Y[: n - per_trait, 1] = np.nan

    start = time.perf_counter()
    V = np.eye(args.observations) + np.kron(np.eye(2), K[:per_trait, :per_trait])
    chol = scipy.linalg.cholesky(V, lower=True, overwrite_a=True, check_finite=False)
    scipy.linalg.lapack.dpotri(chol, lower=1, overwrite_c=1)
    step = time.perf_counter() - start

    calls = []
    original = dense_pair_model

    def counted(**kwargs):
        model = original(**kwargs)
        evaluate = model.evaluate

        def timed(phi, fisher=False):
            key = (np.asarray(phi).tobytes(), fisher)
            if not calls or calls[-1] != key:  # a repeated call is remembered, not factored again
                calls.append(key)
            return evaluate(phi, fisher)
        return type(model)(**{**model.__dict__, "evaluate": timed})

    import dask_h2.greml.bivariate as bivariate
    bivariate.dense_pair_model = counted
    start = time.perf_counter()
    (pair,) = fit_bivariate(eigendecompose(K), Y, names=["a", "b"], pairs=[(0, 1)], X=np.ones((n, 1)),
                            columns=["intercept"], kinship_block=lambda r, c: K[np.ix_(r, c)])
    wall = time.perf_counter() - start
    print(f"N = {args.observations} observations ({per_trait} per trait, {shared} in common), path {pair.path}")
    print(f"fit + LRT nulls: {wall:.1f} s, {len(calls)} steps ({sum(f for _, f in calls)} with the expected "
          f"information), "
          f"rG = {pair.rg:.3f} (SE {pair.rg_se:.3f})")
    print(f"one Cholesky + inverse of V (the hardware limit of a step): {step:.2f} s; "
          f"wall / (steps x limit) = {wall / (len(calls) * step):.2f}")


if __name__ == "__main__":
    main()
