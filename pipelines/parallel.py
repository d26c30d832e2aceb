"""make repro: the DVC pipeline with its independent stages side by side, one core each.

    python -m pipelines.parallel [--jobs N] [STAGE ...]

The same stages, order and outputs as ``dvc repro [STAGE ...]``, which runs them one after another: each stage
starts as soon as every stage it depends on has finished, at most ``--jobs`` at once (default: the usable
cores), and gets its share of the cores through OMP_NUM_THREADS. DVC decides what is up to date (one ``dvc
status`` first) and records every stage in ``dvc.lock`` as ``dvc repro`` does. Each stage's output is printed
when it ends. A failing stage lets the running ones finish, starts nothing more and exits 2 with its error
lines. No Prefect: ``make flow`` runs the same schedule as a Prefect flow.

Each stage runs through ``pipelines.warm`` (DVC's steps for one stage from one open DVC repository, the
command in a child of a forkserver that imported the stage modules once), which saves the 3–10 s of DVC and
Python start-up a stage pays under ``dvc repro``; ``--cold`` runs each stage with ``dvc repro --single-item``
instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pipelines.schedule import (FIRST_STAGES, StageFailed, StageProgress, output_lines, plan, run_as_ready,
                                run_stage, stages_to_run, thread_share)
from pipelines.warm import WarmStages


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def reproduce(repo_dir: Path, stages: list[str] | None, jobs: int, echo=print,
              times: dict | None = None, cold: bool = False) -> dict[str, str]:
    """Run what DVC says is out of date among ``stages`` (all when None) and what they need, ``jobs`` at once;
    returns {stage: 'ran' | 'skipped' | 'restored'} in DVC's order. ``times`` receives each stage that ran:
    {stage: (started, ended)} in seconds from the start. ``cold``: each stage through ``dvc repro --single-item``."""
    p = plan(repo_dir, remote=None)
    selected = p.select(stages)
    threads, lock, start = thread_share(jobs), threading.Lock(), time.perf_counter()
    progress = StageProgress(len(stages_to_run(p, selected)), jobs)
    def progress_line(stage: str, line: str) -> None:
        with lock:  # the tail threads of two stages, and the finish messages, one line at a time
            echo(f"   {stage} | {line}")

    warm = None if cold else WarmStages(repo_dir, threads, on_progress=progress_line)

    def run(stage: str) -> tuple[str, str]:
        if warm is None:
            outcome, stdout, _ = run_stage(stage, repo_dir, threads)
            return outcome, stdout
        return warm.run(stage)

    def one(stage: str) -> str:
        t0 = time.perf_counter()
        try:
            outcome, stdout = run(stage)
        except StageFailed as failed:
            with lock:
                echo("\n".join(output_lines(failed.stdout) + output_lines(failed.stderr)))
            raise
        with lock:
            if times is not None:
                times[stage] = (t0 - start, time.perf_counter() - start)
            lines = [line for line in output_lines(stdout) if not line.startswith(("Running stage", "> "))]
            progress.finished(stage, outcome, time.perf_counter() - t0)
            echo("\n".join([f"== {stage}: {outcome} in {time.perf_counter() - t0:.1f}s "
                            f"(at {time.perf_counter() - start:.0f}s; {progress.line()})", *lines]))
        return outcome

    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            def submit(stage: str, outcome: dict[str, str]):
                if stage in p.ran:
                    return p.ran[stage]
                return pool.submit(one, stage) if p.must_run(stage, outcome) else "skipped"

            return run_as_ready(selected, p.upstream, submit, jobs)
    finally:
        if warm is not None:
            warm.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stages", nargs="*", help="run only these stages and what they need")
    parser.add_argument("--jobs", type=int, default=usable_cores(), help="stages at once (default: usable cores)")
    parser.add_argument("--cold", action="store_true",
                        help="run each stage with `dvc repro --single-item` (a new DVC and Python process each)")
    parser.add_argument("--repo", default=".")
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1 (got {args.jobs})")
    start, times, repo = time.perf_counter(), {}, Path(args.repo).resolve()
    try:
        outcome = reproduce(repo, args.stages or None, args.jobs, times=times, cold=args.cold)
    except (StageFailed, ValueError) as failed:
        print(f"[repro] {failed}", file=sys.stderr)
        sys.exit(2)
    finally:
        if times:
            write_times(repo / TIMES, times, args.jobs, time.perf_counter() - start)
    ran = [s for s, o in outcome.items() if o == "ran"]
    print(time_table(times))
    print(f"[repro] {len(ran)} stage(s) ran, {len(outcome) - len(ran)} up to date, {args.jobs} at once, "
          f"in {time.perf_counter() - start:.0f}s (stage times: {TIMES})")


TIMES = Path("logs/repro_times.json")


def write_times(path: Path, times: dict, jobs: int, wall_s: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"jobs": jobs, "wall_s": wall_s, "planned": list(FIRST_STAGES),
                                "stages": {s: {"start_s": a, "end_s": b, "seconds": b - a}
                                           for s, (a, b) in sorted(times.items(), key=lambda kv: kv[1])}},
                               indent=1) + "\n")


def time_table(times: dict) -> str:
    """Seconds by kind of stage (``train`` for every train@ROW), most first: where the run's time went.
    Stages ran side by side, so the seconds add up to more than the wall time."""
    kinds: dict[str, list[float]] = {}
    for stage, (a, b) in times.items():
        kinds.setdefault(stage.split("@")[0], []).append(b - a)
    rows = sorted(kinds.items(), key=lambda kv: -sum(kv[1]))
    lines = ["| stages | count | seconds | longest |", "|---|---:|---:|---:|"]
    lines += [f"| {kind} | {len(s)} | {sum(s):.0f} | {max(s):.0f} |" for kind, s in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
