"""A real Dask cluster on 127.0.0.1 started by deploy/local-cluster.sh, for tests and benchmarks."""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

SCRIPT = Path(__file__).resolve().parents[1] / "deploy" / "local-cluster.sh"
START_TIMEOUT = 90  # seconds, for the scheduler and every worker to come up
IDLE_TIMEOUT = 300  # seconds: a cluster left behind by a killed test run stops by itself


@dataclass(frozen=True)
class DeployedCluster:
    """The scheduler's address and the run directory (pid files, logs) of a started cluster."""

    address: str
    run_dir: Path

    def worker_pid(self, index: int) -> int:
        """The process group (nanny and worker) of worker ``index`` (1-based)."""
        return int((self.run_dir / f"worker-{index}.pid").read_text())

    def kill_worker(self, index: int) -> None:
        """SIGKILL worker ``index`` with its nanny: no clean shutdown, no restart."""
        os.killpg(self.worker_pid(index), signal.SIGKILL)


def missing_tools() -> str | None:
    """Why the deploy script cannot run here, or None."""
    bin_dir = Path(sys.executable).parent
    for tool in ("bash", "setsid"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if shutil.which("dask", path=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}") is None:
        return "the 'dask' command of distributed is not on PATH"
    return None


@contextlib.contextmanager
def deployed_cluster(run_dir: Path, workers: int = 2, threads: int = 1, blas_threads: int = 1,
                     memory_limit: str = "auto", env: dict[str, str] | None = None) -> Iterator[DeployedCluster]:
    """Start a scheduler and ``workers`` worker processes with the deploy script; stop them after."""
    environment = {**os.environ, **(env or {}), "PYTHON": sys.executable,
                   "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    common = ["--dir", str(run_dir)]
    start = [str(SCRIPT), "start", *common, "--workers", str(workers), "--threads", str(threads),
             "--blas-threads", str(blas_threads), "--memory-limit", memory_limit, "--port", "0",
             "--dashboard-port", "0", "--timeout", str(START_TIMEOUT), "--idle-timeout", str(IDLE_TIMEOUT)]
    try:
        result = subprocess.run(start, env=environment, capture_output=True, text=True, timeout=START_TIMEOUT + 30)
        if result.returncode != 0:
            logs = "\n".join(p.read_text()[-2000:] for p in sorted(run_dir.glob("*.log")))
            raise RuntimeError(f"deploy script failed ({result.returncode}):\n{result.stderr}\n{logs}")
        address = re.search(r"DASK_SCHEDULER_ADDRESS=(\S+)", result.stdout).group(1)
        yield DeployedCluster(address, run_dir)
    finally:
        subprocess.run([str(SCRIPT), "stop", *common], env=environment, capture_output=True, timeout=60)
