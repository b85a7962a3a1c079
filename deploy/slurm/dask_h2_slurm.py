"""Run one dask-h2 command on a SLURM cluster: dask-jobqueue submits the Dask workers as batch
jobs, this process runs the scheduler and the dask-h2 driver (eigendecomposition, fits).

    python deploy/slurm/dask_h2_slurm.py [--jobs 4] [--cores 16] [--memory 64GB] [--walltime 04:00:00]
        [--queue NAME] [--account NAME] [--interface ib0] [--host ADDRESS] -- COMMAND ARGS...

COMMAND ARGS are those of ``dask-h2`` (grm, fit, run, demo); ``--scheduler`` is added. Each job
runs ``--cores`` worker processes of one thread (BLAS on one thread each) sharing ``--memory``.
"""
from __future__ import annotations

import argparse
import sys

from dask_jobqueue import SLURMCluster
from distributed import Client

from dask_h2.cli import main as dask_h2


def parse(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    """The cluster's options, and the dask-h2 command after ``--``."""
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4, help="SLURM jobs of workers (default 4)")
    parser.add_argument("--cores", type=int, default=16, help="cores per job = worker processes per job (default 16)")
    parser.add_argument("--memory", default="64GB", help="memory per job, shared by its workers (default 64GB)")
    parser.add_argument("--walltime", default="04:00:00")
    parser.add_argument("--queue", help="SLURM partition")
    parser.add_argument("--account", help="SLURM account")
    parser.add_argument("--interface", help="network interface of the scheduler and workers, e.g. ib0")
    parser.add_argument("--host", help="address the scheduler listens on (default: all)")
    parser.add_argument("--wait", type=float, default=3600, help="seconds to wait for all workers (default 3600)")
    args = parser.parse_args(argv[:split])
    if split == len(argv) or split + 1 == len(argv):
        parser.error("give the dask-h2 command after --, e.g. -- fit gwas.zarr --out gwas")
    return args, argv[split + 1:]


def make_cluster(args: argparse.Namespace) -> SLURMCluster:
    """The workers' batch jobs as dask-jobqueue writes them (submitted by ``scale``)."""
    return SLURMCluster(cores=args.cores, processes=args.cores, memory=args.memory, walltime=args.walltime,
                        queue=args.queue, account=args.account, interface=args.interface, job_name="dask-h2-worker",
                        scheduler_options={"host": args.host} if args.host else {})


def main(argv: list[str] | None = None) -> int:
    args, command = parse(argv)
    with make_cluster(args) as cluster, Client(cluster) as client:
        cluster.scale(jobs=args.jobs)
        client.wait_for_workers(args.jobs * args.cores, timeout=args.wait)
        return dask_h2([*command, "--scheduler", cluster.scheduler_address])


if __name__ == "__main__":
    sys.exit(main())
