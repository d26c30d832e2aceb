"""Deployments of the pipeline flow: a served schedule, and work pools for workers.

    .venv/bin/python -m pipelines.deploy serve  # long-running: serves the flow on orchestration.schedule_cron
    .venv/bin/python -m pipelines.deploy pool   # registers deployments on orchestration.work_pool (and gpu_pool)
    .venv/bin/prefect worker start --pool textdiff      # on each machine that runs whole flow runs
    .venv/bin/prefect worker start --pool textdiff-gpu  # on each GPU machine, when orchestration.gpu_pool is set

``serve`` runs scheduled runs in this process (no worker needed). ``pool``
registers the flow on a process work pool (created if missing) with a git source:
each flow run first clones the committed code (the repository's ``origin``, or
this clone when it has none) at the current branch into the worker's temporary
folder and runs there, so it runs what was committed, with the interpreter the
deployment names (this clone's ``.venv``: workers need a clone at the same path).
A fresh checkout has no outputs: give the runs a DVC remote
(``orchestration.remote``) so that they restore what any run computed before.
Both deployments allow one run at a time: a schedule that fires while a run is
still going queues behind it instead of fighting it for DVC's lock on
the same checkout. With ``orchestration.gpu_pool`` set, ``pool`` also registers
``textdiff-gpu-stages`` on that pool, with the same git source and environment:
the flow sends its training and sampling stages there, one flow run per stage
(pipelines.flow), as many at once as there are GPU workers (each run works in a
checkout of its own). All need a Prefect API (``prefect server start`` and
``PREFECT_API_URL``); see README, Orchestration.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.runner.storage import GitRepository

from pipelines import tool
from pipelines.flow import GPU_STAGES_DEPLOYMENT, pipeline
from textdiff.config import load_params

ENTRYPOINT = "pipelines/flow.py:pipeline"


ONE_RUN_AT_A_TIME = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)


def scheduled_deployment(repo_dir: Path, cron: str | None = None):
    settings = load_params(repo_dir / "params.yaml").orchestration
    return pipeline.to_deployment(name="textdiff-scheduled", cron=cron or settings.schedule_cron,
                                  parameters={"repo_dir": str(repo_dir)}, tags=["textdiff", "scheduled"],
                                  concurrency_limit=ONE_RUN_AT_A_TIME)


def serve(repo_dir: Path, cron: str | None = None) -> None:
    from prefect import serve as serve_deployments

    serve_deployments(scheduled_deployment(repo_dir, cron))


def ensure_pool(name: str) -> None:
    """Create a process work pool unless it exists (the CLI is the stable interface for this)."""
    listed = subprocess.run(tool("prefect", "work-pool", "inspect", name), capture_output=True, text=True)
    if listed.returncode != 0:
        subprocess.run(tool("prefect", "work-pool", "create", name, "--type", "process"), check=True)


def run_environment(repo_dir: Path) -> dict:
    """What a worker's flow run needs, carried by the deployment: an environment in which the stages find this
    clone's interpreter (bin/py reads TEXTDIFF_PYTHON; a worker's machine has a clone at the same path) with no
    network look-ups. The code itself comes from the deployment's git source."""
    venv_python = repo_dir / ".venv" / "bin" / "python"
    env = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    if venv_python.exists():
        env["TEXTDIFF_PYTHON"] = str(venv_python)
    return {"env": env}


def git_source(repo_dir: Path) -> GitRepository:
    """Where a worker pulls the committed code from: ``origin`` when the clone has one, else this clone;
    at the branch checked out here."""
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=repo_dir, capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else ""

    return GitRepository(url=git("remote", "get-url", "origin") or str(repo_dir),
                         branch=git("rev-parse", "--abbrev-ref", "HEAD") or None, pull_interval=None)


def deploy_to_pool(repo_dir: Path, pool: str | None = None) -> str:
    """The pipeline on ``pool`` (default ``orchestration.work_pool``), one run at a time; returns its id."""
    settings = load_params(repo_dir / "params.yaml").orchestration
    pool = pool or settings.work_pool
    ensure_pool(pool)
    flow_from_source = pipeline.from_source(source=git_source(repo_dir), entrypoint=ENTRYPOINT)
    deployment_id = flow_from_source.deploy(name="textdiff-pool", work_pool_name=pool,
                                            parameters={"repo_dir": "."},  # the flow run's own fresh checkout
                                            tags=["textdiff"], job_variables=run_environment(repo_dir),
                                            concurrency_limit=ONE_RUN_AT_A_TIME, print_next_steps=False)
    return str(deployment_id)


def deploy_gpu_stages(repo_dir: Path, pool: str) -> str:
    """The deployment the flow sends its ``orchestration.gpu_stages`` to: on ``pool``, no routing of its own,
    no run limit (each run has its own checkout); returns its id."""
    ensure_pool(pool)
    flow_from_source = pipeline.from_source(source=git_source(repo_dir), entrypoint=ENTRYPOINT)
    deployment_id = flow_from_source.deploy(name=GPU_STAGES_DEPLOYMENT, work_pool_name=pool,
                                            parameters={"repo_dir": ".", "route": False},
                                            tags=["textdiff", "gpu"], job_variables=run_environment(repo_dir),
                                            print_next_steps=False)
    return str(deployment_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["serve", "pool"])
    parser.add_argument("--cron", help="override orchestration.schedule_cron")
    parser.add_argument("--pool", help="override orchestration.work_pool")
    parser.add_argument("--repo", default=".")
    args = parser.parse_args()
    repo_dir = Path(args.repo).resolve()
    if args.what == "serve":
        serve(repo_dir, args.cron)
    else:
        settings = load_params(repo_dir / "params.yaml").orchestration
        pool = args.pool or settings.work_pool
        print(f"deployment textdiff-pipeline/textdiff-pool ({deploy_to_pool(repo_dir, pool)}) on pool {pool}")
        if settings.gpu_pool:
            print(f"deployment textdiff-pipeline/{GPU_STAGES_DEPLOYMENT} ({deploy_gpu_stages(repo_dir, settings.gpu_pool)})"
                  f" on pool {settings.gpu_pool}, for the stages {', '.join(settings.gpu_stages)}")
        print("start workers with: .venv/bin/prefect worker start --pool POOL")


if __name__ == "__main__":
    main()
