"""Shared by the simulation benchmarks: run one function over replicate tasks, in parallel processes."""
from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Sequence

import numpy as np


def run_replicates(replicate: Callable, tasks: Sequence, jobs: int = 1) -> tuple[np.ndarray, float]:
    """(the results of ``replicate`` on every task stacked, the seconds taken) with ``jobs`` processes."""
    started = time.perf_counter()
    with ProcessPoolExecutor(jobs) as pool:
        results = np.array(list(pool.map(replicate, tasks)))
    return results, time.perf_counter() - started
