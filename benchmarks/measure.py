"""Wall time, CPU time and peak RSS of a command, for the benchmarks.

The command runs under a small fresh interpreter that waits for it (wait4), so the peak
RSS is the command's own: a child forked straight from a benchmark holding gigabytes
would count them (measured: 3.2 GiB reported for plink2 and for `dask-h2 run` alike).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

LAUNCHER = r"""
import json, os, subprocess, sys
process = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=open(os.environ["MEASURE_STDERR"], "w"))
_, status, usage = os.wait4(process.pid, 0)
print(json.dumps({"status": os.waitstatus_to_exitcode(status), "peak_rss": usage.ru_maxrss * 1024,
                  "cpu": usage.ru_utime + usage.ru_stime}))
"""


def measured(argv: list[str], env: dict[str, str] | None = None) -> dict:
    """Run ``argv``; {"wall": s, "cpu": s, "peak_rss": bytes}. Raises RuntimeError (with its stderr) on failure."""
    with tempfile.NamedTemporaryFile("r", suffix=".stderr") as stderr:
        environment = {**os.environ, **(env or {}), "MEASURE_STDERR": stderr.name}
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", LAUNCHER, *argv], capture_output=True, text=True,
                                env=environment)
        wall = time.perf_counter() - start
        outcome = json.loads(result.stdout.strip().splitlines()[-1]) if result.returncode == 0 else None
        if outcome is None or outcome["status"] != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{stderr.read()[-3000:]}{result.stderr[-2000:]}")
    return {"wall": wall, "cpu": outcome["cpu"], "peak_rss": outcome["peak_rss"]}


def gib(value: float) -> str:
    return f"{value / 2**30:.2f} GiB"
