"""README's table of where a `make repro` run's time went, from the runner's record of it.

    .venv/bin/python benchmarks/repro_table.py [benchmarks/results/default_run/repro_times.json]

``pipelines/parallel.py`` writes ``logs/repro_times.json`` (every stage's start, end and seconds); the measured
default run's copy is committed beside ``run.json``. The table groups the stages by kind (the name before
``@``); a kind with one stage under ``SMALL_S`` seconds joins one row of such stages. The stages the plan runs
first (``code``, then ``validate``; only ``validate`` before the code stage existed) are not timed. tests/test_readme_figures.py checks that README's table is this output.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SMALL_S = 100.0  # single stages below this share one row
PLANNED = ("code", "validate")  # pipelines/schedule.py FIRST_STAGES: what the plan runs before the timed stages
TRAINING_KINDS = ("train", "judge", "autoencoder", "decoder")  # the stages that train (the ≥ 70 % goal)


def kind(stage: str) -> str:
    return stage.split("@")[0]


def groups(times: dict) -> list[tuple[str, list[float]]]:
    """[(label, [seconds of each stage])], the largest total first; small single stages share one row, last."""
    by_kind: dict[str, list[float]] = {}
    for stage, record in times["stages"].items():
        by_kind.setdefault(kind(stage), []).append(record["seconds"])
    rows, small = [], []
    for name, seconds in by_kind.items():
        if len(seconds) == 1 and seconds[0] < SMALL_S:
            small.append((name, seconds[0]))
        else:
            rows.append((name, seconds))
    rows.sort(key=lambda r: -sum(r[1]))
    if small:
        small.sort(key=lambda r: -r[1])
        rows.append((", ".join(name for name, _ in small), [s for _, s in small]))
    return rows


def training_share(times: dict) -> float:
    """Core-seconds of the training stages over all the run's stage seconds."""
    total = sum(r["seconds"] for r in times["stages"].values())
    return sum(r["seconds"] for s, r in times["stages"].items() if kind(s) in TRAINING_KINDS) / total


def table(times: dict) -> str:
    lines = ["| stages | count | seconds (one core) | longest |", "|---|---:|---:|---:|"]
    for label, seconds in groups(times):
        lines.append(f"| {label} | {len(seconds)} | {sum(seconds):,.0f} | {max(seconds):,.0f} |")
    total = [r["seconds"] for r in times["stages"].values()]
    first = [s for s in PLANNED if s in times.get("planned", ("validate",))]
    lines.append(f"| all but {', '.join(f'`{s}`' for s in first)} (run first, by the plan) | {len(total)} | "
                 f"{sum(total):,.0f} | |")
    return "\n".join(lines)


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/default_run/repro_times.json")
    times = json.loads(path.read_text())
    print(table(times))
    print(f"\ntraining stages ({', '.join(TRAINING_KINDS)}): {training_share(times):.0%} of the core-seconds; "
          f"runner wall {times['wall_s']:,.0f} s with {times['jobs']} jobs")


if __name__ == "__main__":
    main()
