"""The deploy/ recipes that cannot run here (docker compose, Kubernetes, SLURM): their files
parse, and every dask-h2, dask scheduler and dask worker command they give exists."""
from __future__ import annotations

import functools
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dask_h2.cli import build_parser

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
COMPOSE = DEPLOY / "docker" / "docker-compose.yml"
JOB = DEPLOY / "kubernetes" / "dask-h2-job.yaml"
SLURM = DEPLOY / "slurm" / "dask_h2_slurm.py"


@functools.cache
def dask_options(command: str) -> str:
    """The help text of ``dask scheduler`` or ``dask worker``."""
    return subprocess.run([sys.executable, "-m", "distributed.cli.dask_" + command, "--help"], capture_output=True,
                          text=True, check=True, timeout=60).stdout


def check_command(argv: list[str]) -> None:
    """A dask-h2 command parses with dask-h2's parser; a dask scheduler/worker command's options exist."""
    if argv[0] == "dask-h2":
        build_parser().parse_args(argv[1:])
    elif argv[:2] in (["dask", "scheduler"], ["dask", "worker"]):
        for option in (a.split("=")[0] for a in argv[2:] if a.startswith("--")):
            assert re.search(rf"\s{re.escape(option)}[\s,/]", dask_options(argv[1])), f"dask {argv[1]} {option}"
    else:
        raise AssertionError(f"unexpected command {argv}")


def documented_commands(readme: Path) -> list[list[str]]:
    """The dask-h2 and dask commands in a README's sh blocks, including those that a
    ``docker compose run dask-h2`` or ``dask_h2_slurm.py … --`` line passes on."""
    blocks = re.findall(r"```sh\n(.*?)```", readme.read_text(), flags=re.S)
    commands = []
    for line in "\n".join(blocks).replace("\\\n", " ").splitlines():
        for part in re.split(r"&&|;|\|", line.split(" #")[0]):
            words = shlex.split(part)
            if any(word.endswith("dask_h2_slurm.py") for word in words):
                words = ["dask-h2", *words[words.index("--") + 1:]]
            starts = [i for i, word in enumerate(words) if word in ("dask-h2", "dask")]
            if starts:
                commands.append(words[starts[0]:])
    return commands


@pytest.mark.slow
def test_compose_file_parses_and_its_commands_exist():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert set(services) == {"scheduler", "worker", "dask-h2"}
    assert all(s["image"] == "dask-h2:latest" and any(v.endswith(":/data") for v in s["volumes"])
               for s in services.values())
    assert services["dask-h2"]["environment"]["DASK_SCHEDULER_ADDRESS"] == "tcp://scheduler:8786"
    for name in ("scheduler", "worker"):
        check_command([word for word in services[name]["command"] if not word.startswith("tcp://")])
    dockerfile = DEPLOY / "docker" / services["scheduler"]["build"]["dockerfile"].removeprefix("deploy/docker/")
    assert dockerfile.exists()


def test_kubernetes_job_parses_and_its_commands_exist():
    (job,) = yaml.safe_load_all(JOB.read_text())
    assert (job["apiVersion"], job["kind"]) == ("kubernetes.dask.org/v1", "DaskJob")
    cluster = job["spec"]["cluster"]["spec"]
    for pod in (job["spec"]["job"]["spec"], cluster["worker"]["spec"], cluster["scheduler"]["spec"]):
        (container,) = pod["containers"]
        check_command(container["args"])
    assert {p["name"] for p in cluster["scheduler"]["service"]["ports"]} == {"tcp-comm", "http-dashboard"}


@pytest.mark.parametrize("readme", sorted(DEPLOY.rglob("README.md")), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_documented_commands_exist(readme):
    commands = documented_commands(readme)
    assert commands, f"{readme} documents no command"
    for argv in commands:
        check_command(argv)


def test_slurm_recipe_writes_worker_jobs():
    pytest.importorskip("dask_jobqueue", reason="dask-jobqueue is not installed (pip install dask-jobqueue)")
    sys.path.insert(0, str(SLURM.parent))
    try:
        import dask_h2_slurm
    finally:
        sys.path.remove(str(SLURM.parent))
    args, command = dask_h2_slurm.parse(["--jobs", "2", "--cores", "4", "--memory", "16GB", "--queue", "normal",
                                         "--host", "127.0.0.1", "--", "fit", "gwas.zarr", "--out", "gwas"])
    check_command(["dask-h2", *command, "--scheduler", "tcp://127.0.0.1:8786"])
    with dask_h2_slurm.make_cluster(args) as cluster:
        script = cluster.job_script()
    assert "#SBATCH -p normal" in script and "--nthreads 1" in script and "--nworkers 4" in script
    assert "--memory-limit 3.73GiB" in script
