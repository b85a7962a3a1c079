"""Calibration of PCGC from a GRM (dask_h2.greml.pcgc): 100 ascertained studies (500 cases + 500 controls from a
population with a liability-threshold disease, K = 0.1, h²_L = 0.5, 1,000 independent causal markers), the
mean estimate against the truth and the sample jackknife's mean SE against the SD of the estimates.

    nice -n 10 python benchmarks/pcgc_grm_calibration.py [--replicates 100]   (about 45 s per 100 on one core)

Study r uses seed r. The SE/SD's ± is its normal-theory sampling error, SE/SD / √(2(R − 1)).
"""
import argparse
import time

import numpy as np

from dask_h2.greml.pcgc import pcgc_of_kinships

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--replicates", type=int, default=100, help="studies (study r uses seed r)")
K_prev, h2, cases, markers, reps = 0.1, 0.5, 500, 1000, parser.parse_args().replicates
est, se = [], []
t0 = time.time()
for seed in range(reps):
    rng = np.random.default_rng(seed)
    population = int(cases / K_prev * 1.2)
    f = rng.uniform(0.05, 0.5, markers)
    G = rng.binomial(2, f, size=(population, markers)).astype(float)
    Z = (G - 2 * f) / np.sqrt(2 * f * (1 - f))
    g = Z @ rng.standard_normal(markers)
    l = np.sqrt(h2) * (g - g.mean()) / g.std() + np.sqrt(1 - h2) * rng.standard_normal(population)
    d = l > np.quantile(l, 1 - K_prev)
    chosen = np.concatenate([rng.choice(np.flatnonzero(d), cases, replace=False), rng.choice(np.flatnonzero(~d), cases, replace=False)])
    Gs = G[chosen]; fs = Gs.mean(0) / 2
    W = (Gs - 2 * fs) / np.sqrt(2 * fs * (1 - fs))
    Kin = W @ W.T / markers
    e, r = pcgc_of_kinships(Kin[None], d[chosen].astype(float), X=np.ones((2 * cases, 1)), prevalence=K_prev, n_blocks=100)
    est.append(e.h2_total); se.append(e.h2_total_se)
est, se = np.array(est), np.array(se)
sd = est.std(ddof=1)
for first in range(0, reps, 100) if reps > 100 else []:  # batches of 100, to see the spread of SE/SD
    b = slice(first, first + 100)
    print(f"studies {first}-{min(first + 100, reps) - 1}: SE/SD {se[b].mean() / est[b].std(ddof=1):.2f}")
print(f"{reps} studies of {cases}+{cases}, K={K_prev}, h2={h2}, {markers} markers: mean {est.mean():.4f} ± {sd/np.sqrt(reps):.4f}, SD {sd:.4f}, mean SE {se.mean():.4f}, SE/SD {se.mean()/sd:.2f} ± {se.mean()/sd/np.sqrt(2*(reps-1)):.2f}; {time.time()-t0:.0f} s")
