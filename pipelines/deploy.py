"""Deployments of the pipeline flow: a served schedule, and a work pool for GPU workers.

    .venv/bin/python -m pipelines.deploy serve  # long-running: serves the flow on orchestration.schedule_cron
    .venv/bin/python -m pipelines.deploy pool   # registers a deployment on the orchestration.work_pool pool
    .venv/bin/prefect worker start --pool textdiff-gpu  # on each GPU machine, in its own clone

``serve`` runs scheduled runs in this process (no worker needed). ``pool``
registers the flow, from this clone's directory, on a process work pool
(created if missing); every worker started on that pool in a clone of the
repository at the same path picks up its runs. Both need a Prefect API
(``prefect server start`` and ``PREFECT_API_URL``); see README, Orchestration.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from pipelines import tool
from pipelines.flow import pipeline
from textdiff.config import load_params

ENTRYPOINT = "pipelines/flow.py:pipeline"


def serve(repo_dir: Path, cron: str | None = None) -> None:
    settings = load_params(repo_dir / "params.yaml").orchestration
    pipeline.serve(name="textdiff-scheduled", cron=cron or settings.schedule_cron,
                   parameters={"repo_dir": str(repo_dir)}, tags=["textdiff", "scheduled"])


def ensure_pool(name: str) -> None:
    """Create a process work pool unless it exists (the CLI is the stable interface for this)."""
    listed = subprocess.run(tool("prefect", "work-pool", "inspect", name), capture_output=True, text=True)
    if listed.returncode != 0:
        subprocess.run(tool("prefect", "work-pool", "create", name, "--type", "process"), check=True)


def run_environment(repo_dir: Path) -> dict:
    """What a worker's flow run needs, carried by the deployment: the clone to run in, and an environment in
    which the stages find the clone's interpreter (bin/py reads TEXTDIFF_PYTHON) with no network look-ups."""
    venv_python = repo_dir / ".venv" / "bin" / "python"
    env = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    if venv_python.exists():
        env["TEXTDIFF_PYTHON"] = str(venv_python)
    return {"working_dir": str(repo_dir), "env": env}


def deploy_to_pool(repo_dir: Path, pool: str | None = None) -> str:
    settings = load_params(repo_dir / "params.yaml").orchestration
    pool = pool or settings.work_pool
    ensure_pool(pool)
    flow_from_source = pipeline.from_source(source=str(repo_dir), entrypoint=ENTRYPOINT)
    deployment_id = flow_from_source.deploy(name="textdiff-gpu", work_pool_name=pool,
                                            parameters={"repo_dir": str(repo_dir)}, tags=["textdiff", "gpu"],
                                            job_variables=run_environment(repo_dir), print_next_steps=False)
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
        print(f"deployment {deploy_to_pool(repo_dir, args.pool)} on pool {args.pool or 'from params'}; "
              f"start workers with: prefect worker start --pool <pool>")


if __name__ == "__main__":
    main()
