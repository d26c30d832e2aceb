"""Ablation sweeps as a Prefect flow: param overrides -> queued DVC experiments -> a table in the report.

    python -m pipelines.sweep [--only GROUP] [--jobs N]                      (make sweep)
    python -m pipelines.sweep --row sedd_absorb --run a=sedd_absorb.sample.steps=32 --run b=...

The work is pipelines.ablate's (queue each run with ``dvc exp run --queue -S``,
run the queue ``jobs`` at a time, collect ``dvc exp show --json``); the flow adds
a task per step with retries on the queue run, the report refresh
(``dvc repro report``) and the ablation tables as a markdown artifact.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from pipelines import prefect_api
from pipelines.ablate import ABLATIONS, collect, dvc, load_groups, missing_runs, queue_experiment, run_queue
from pipelines.flow import section
from textdiff.config import load_params
from textdiff.io import read_json, write_json


@task(task_run_name="queue {name}")
def queue_run(name: str, overrides: list[str], repo_dir: str) -> None:
    queue_experiment(name, overrides, repo_dir)


@task(retries=1, retry_delay_seconds=5)
def run_all(jobs: int, repo_dir: str) -> None:
    run_queue(jobs, repo_dir)


@task
def collect_metrics(groups: dict, repo_dir: str) -> dict:
    out_path = Path(repo_dir) / "reports" / "ablations.json"
    collected = collect(groups, repo_dir)
    write_json(out_path, {**(read_json(out_path) if out_path.exists() else {}), **collected})
    return collected


@flow(name="textdiff-sweep", log_prints=True)
def sweep(repo_dir: str = ".", file: str | None = None, only: str | None = None, row: str | None = None,
          runs: dict[str, list[str]] | None = None, group: str = "sweep", description: str = "",
          jobs: int | None = None) -> dict:
    """Either ``runs`` ({name: [overrides]}) for ``row`` as one group, or the groups of ``file`` (``only`` one)."""
    cwd = str(Path(repo_dir).resolve())
    if runs:
        if not row:
            raise ValueError("a sweep given as runs needs the row whose metrics it compares")
        groups = {group: {"row": row, "description": description, "runs": runs}}
    else:
        groups = load_groups(Path(cwd) / (file or ABLATIONS))
        if only:
            if only not in groups:
                raise ValueError(f"no group {only!r}; groups: {', '.join(groups)}")
            groups = {only: groups[only]}
    jobs = jobs or load_params(Path(cwd) / "params.yaml").orchestration.sweep_jobs
    for g in groups.values():
        for name, overrides in g["runs"].items():
            queue_run(name, overrides, cwd)
    run_all(jobs, cwd)
    collected = collect_metrics(groups, cwd)
    failed = missing_runs(collected)
    if failed:
        raise RuntimeError(f"no metrics for {', '.join(failed)}: see `dvc queue status` and `dvc queue logs NAME`")
    dvc("repro", "report", cwd=cwd)
    report = (Path(cwd) / "reports" / "report.md").read_text(encoding="utf-8")
    create_markdown_artifact(key="textdiff-ablations", markdown=section(report, "Ablations"),
                             description="ablation tables from DVC experiments")
    return collected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", default=None, help="ablation groups (default ablations.yaml)")
    parser.add_argument("--only", help="one group of the file")
    parser.add_argument("--row", help="with --run: the row whose metrics are compared")
    parser.add_argument("--model", dest="old_model", help=argparse.SUPPRESS)  # the old spelling of --row
    parser.add_argument("--run", action="append", default=[], metavar="NAME=KEY=VALUE[,KEY=VALUE]",
                        help="one experiment: a name and its overrides")
    parser.add_argument("--jobs", type=int)
    args = parser.parse_args()
    runs = {}
    for spec in args.run:
        name, _, overrides = spec.partition("=")
        if not overrides or "=" not in overrides:
            parser.error(f"--run {spec!r}: expected NAME=key=value[,key=value]")
        runs[name] = overrides.split(",")
    with prefect_api(load_params().orchestration.server_startup_timeout_s):
        sweep(file=args.file, only=args.only, row=args.row or deprecated_model(args.old_model), runs=runs or None, jobs=args.jobs)


def deprecated_model(model: str | None) -> str | None:
    if model:
        print("[sweep] --model is deprecated: write --row", file=sys.stderr)
    return model


if __name__ == "__main__":
    main()
