"""`make curves` as a Prefect flow: one task per learning-curve point the compute-gap claims still lack.

    python -m pipelines.curves [--budgets 6.25e11 2.5e12 1e13 4e13] [--jobs N]            (make curves)

The work is benchmarks/compute_gap.py's (textdiff.report.compute_gap states the claims): each missing (row,
budget) point on this data and these params is a task that trains the row under that FLOP budget and returns the
point; the flow appends each to benchmarks/results/learning_curves/points.jsonl (a failed point does not lose
the others), then writes
benchmarks/results/compute_gap.json, which the report's verdict reads (`dvc repro report`). ``--jobs`` points
train at once (default 1: each takes the machine's cores); with a work pool, deployments of this flow let
workers take the points.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from prefect import flow, task
from prefect.task_runners import ThreadPoolTaskRunner

from pipelines import prefect_api

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import compute_gap  # noqa: E402  (benchmarks/compute_gap.py: the runner `make curves` shares with this flow)


@task(task_run_name="train {row} at {budget:.3g} FLOPs", retries=1, retry_delay_seconds=5)
def train_point(row: str, budget: float) -> dict:
    return compute_gap.run_one(compute_gap.load_params(Path("params.yaml")), row, budget)


@task
def summarise(budgets: list[float]) -> dict:
    return compute_gap.write_summary(compute_gap.load_params(Path("params.yaml")), budgets)


@flow(name="textdiff-curves", log_prints=True)
def curves(repo_dir: str = ".", budgets: list[float] | None = None) -> dict:
    """Train every missing point (``budgets``, default compute_gap.BUDGETS) and write the summary."""
    os.chdir(Path(repo_dir).resolve())  # the runner reads data/ and params.yaml from the repository root
    budgets = list(budgets or compute_gap.BUDGETS)
    p = compute_gap.load_params(Path("params.yaml"))
    todo = compute_gap.missing(p, budgets, compute_gap.ROWS, compute_gap.read_points())
    print(f"{len(todo)} point(s) to train: {', '.join(f'{r}@{b:.3g}' for r, b in todo) or 'none'}")
    futures = [train_point.submit(row, budget) for row, budget in todo]
    failed = []
    for future in futures:  # every point that trained is kept, even when another failed
        try:
            compute_gap.append(future.result())
        except Exception as err:  # noqa: BLE001 (reported below, after the others are saved)
            failed.append(f"{future.task_run_id}: {err}")
    if failed:
        raise RuntimeError(f"{len(failed)} point(s) failed (the others are saved): " + "; ".join(failed))
    return summarise(budgets)


def main() -> None:
    from textdiff.config import load_params

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", nargs="+", type=float, default=list(compute_gap.BUDGETS))
    parser.add_argument("--jobs", type=int, default=1, help="points trained at once")
    args = parser.parse_args()
    with prefect_api(load_params().orchestration.server_startup_timeout_s):
        curves.with_options(task_runner=ThreadPoolTaskRunner(max_workers=args.jobs))(budgets=args.budgets)


if __name__ == "__main__":
    main()
