"""Run ablations as DVC experiments and collect their metrics for the report.

    python -m pipelines.ablate [--file ablations.yaml] [--only GROUP] [--jobs N]

Each group in ablations.yaml names a row (or `rows`) and a set of runs; each run is a
list of param overrides. Every run is queued (``dvc exp run --queue -n NAME
-S …``), then the queue runs ``--jobs`` experiments at a time (default
``orchestration.sweep_jobs``), each in its own temp copy. DVC re-runs only the
stages those params feed (a sampling override re-samples and re-evaluates; a
model override retrains), restoring everything else from its run cache. Each
experiment's metrics files, read at its revision from DVC's cache (the names from
``dvc exp show --json``), go to reports/ablations.json, which
the report stage turns into tables. Experiments run from the last git commit:
commit code and dvc.lock first. ``pipelines.sweep`` is the same as a Prefect flow.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

from pipelines import tool, tool_env
from textdiff.io import read_json, write_json

ABLATIONS = Path("ablations.yaml")
OUT = Path("reports/ablations.json")
METRIC_KEYS = ("gen_ppl", "gen_ppl_sample_mean", "entropy", "div", "mem", "mauve", "samples_per_s", "heldout_ppl",
               "heldout_ppl_bound", "context_blind_margin", "context_probe",
               "gen_ppl_ci", "entropy_ci", "div_ci", "mem_ci", "mauve_ci", "heldout_ppl_ci", "rounding_error",
               "rounding_error_ci", "degenerate", "degenerate_reasons", "control_success", "control_unguided_success",
               "control_gen_ppl")
TASK_METRICS = ("metrics/control/{row}.json",)  # flat figures of the task stages (control@ROW)


RENAMED = {"model": "row", "models": "rows"}  # a group's keys before a row was called a row everywhere


def load_groups(path: Path) -> dict:
    groups = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for name, group in groups.items():
        for old, new in RENAMED.items():
            if old in group:
                if new in group:
                    raise ValueError(f"{path}: group {name!r} names both {old!r} and {new!r}: keep {new!r}")
                print(f"[ablate] {path}: {name}.{old} is deprecated, write {name}.{new}", file=sys.stderr)
                group[new] = group.pop(old)
        if "rows" in group:
            if not (isinstance(group["rows"], list) and group["rows"] and all(isinstance(m, str) for m in group["rows"])):
                raise ValueError(f"{path}: {name}.rows must be a list of row names")
        elif "row" not in group:
            raise ValueError(f"{path}: group {name!r} needs 'row' (or a list 'rows')")
        if "runs" not in group:
            raise ValueError(f"{path}: group {name!r} needs 'runs'")
        for run, overrides in group["runs"].items():
            if not isinstance(overrides, list) or not all(isinstance(o, str) and "=" in o for o in overrides):
                raise ValueError(f"{path}: {name}.runs.{run} must be a list of 'key=value' overrides")
    return groups


def dvc(*args: str, check: bool = True, cwd: Path | str = ".") -> subprocess.CompletedProcess:
    out = subprocess.run(tool("dvc", *args), capture_output=True, text=True, cwd=cwd, env=tool_env())
    if check and out.returncode != 0:
        raise RuntimeError(f"dvc {' '.join(args)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return out


def set_or_add(override: str) -> str:
    """``key=value`` as DVC's (Hydra's) ``++key=value``: set the key, or add it where the row's section does not
    write it yet (a row holds only what differs from the defaults block)."""
    return override if override.startswith(("+", "~")) else f"++{override}"


def queue_experiment(name: str, overrides: list[str], cwd: Path | str = ".") -> None:
    """Replace any experiment of this name by a queued one with these overrides."""
    dvc("exp", "remove", name, check=False, cwd=cwd)
    args = ["exp", "run", "--queue", "-n", name]
    for o in overrides:
        args += ["-S", set_or_add(o)]
    print(f"[ablate] queued {name}: {' '.join(overrides)}", flush=True)
    dvc(*args, cwd=cwd)


def run_queue(jobs: int, cwd: Path | str = ".") -> None:
    """Run every queued experiment, ``jobs`` at a time, and wait for them."""
    print(f"[ablate] running the queue, {jobs} at a time", flush=True)
    dvc("exp", "run", "--run-all", "--jobs", str(jobs), cwd=cwd)


def experiment_revisions(cwd: Path | str = ".") -> list[dict]:
    """``dvc exp show --json``: the baselines and their experiments (names and revisions)."""
    return json.loads(dvc("exp", "show", "--json", cwd=cwd).stdout)


def experiment_metrics(row: str, cwd: Path | str = ".", rows: list[dict] | None = None) -> dict[str, dict]:
    """Metrics of ``metrics/eval/MODEL.json``, ``metrics/likelihood/MODEL.json`` and the task files for every
    experiment, by name. The files are outputs, not declared DVC metrics (so that ``dvc metrics show`` reads in
    one screen): each is read at the experiment's revision from DVC's cache. ``rows``: ``experiment_revisions``
    already read."""
    rows = experiment_revisions(cwd) if rows is None else rows
    paths = (f"metrics/likelihood/{row}.json", f"metrics/eval/{row}.json", *(t.format(row=row) for t in TASK_METRICS))
    found: dict[str, dict] = {}

    def visit(entry: dict, is_experiment: bool) -> None:
        name, rev = entry.get("name"), entry.get("rev")
        if is_experiment and name and rev and rev != "workspace":
            metrics = {}
            for path in paths:
                metrics.update(read_at(path, rev, cwd))
            if metrics:
                found[name] = metrics
        for child in entry.get("experiments") or []:
            for exp in child.get("revs") or [child]:
                visit(exp, True)

    for entry in rows:
        visit(entry, False)
    return found


def read_at(path: str, rev: str, cwd: Path | str) -> dict:
    """A JSON output of the pipeline as it was at ``rev`` (an experiment's commit), or {} where it has none."""
    import dvc.api
    from dvc.exceptions import DvcException

    try:
        return json.loads(dvc.api.read(path, repo=str(cwd), rev=rev))
    except (FileNotFoundError, DvcException, json.JSONDecodeError):
        return {}


def collect(groups: dict, cwd: Path | str = ".") -> dict:
    """Each group's baseline and runs, with the data hash and base-params digest they were run on (the report
    shows a group only beside a run with the same two)."""
    from textdiff.report.provenance import base_params_digest

    stats = Path(cwd) / "data/prepared/stats.json"
    data_sha256 = read_json(stats).get("data_sha256") if stats.exists() else None
    raw_params = yaml.safe_load((Path(cwd) / "params.yaml").read_text(encoding="utf-8")) or {}
    out, revisions = {}, experiment_revisions(cwd)
    for gname, group in per_row(groups).items():
        metrics = experiment_metrics(group["row"], cwd, revisions)
        baseline = Path(cwd) / f"metrics/eval/{group['row']}.json"
        rows = []
        if baseline.exists():
            merged = read_json(baseline)
            likelihood = Path(cwd) / f"metrics/likelihood/{group['row']}.json"
            if likelihood.exists():
                merged = {**read_json(likelihood), **merged}
            for task in (Path(cwd) / t.format(row=group["row"]) for t in TASK_METRICS):
                merged = {**(read_json(task) if task.exists() else {}), **merged}
            rows.append({"name": "baseline (params.yaml)", "overrides": [], **_pick(merged)})
        for run, overrides in group["runs"].items():
            rows.append({"name": run, "overrides": overrides, **_pick(metrics.get(run, {}))})
        out[gname] = {"description": group.get("description", ""), "row": group["row"], "rows": rows,
                      "data_sha256": data_sha256, "base_params": base_params_digest(raw_params, group["row"]),
                      **({"seeds": True} if group.get("seeds") else {})}
    return out


def per_row(groups: dict) -> dict:
    """A group that names several ``rows`` (its runs retrain them all, e.g. the training seeds) is collected
    as one group per row, ``GROUP/ROW``: the same experiments, each row's metrics."""
    out = {}
    for gname, group in groups.items():
        if "rows" not in group:
            out[gname] = group
            continue
        for row in group["rows"]:
            out[f"{gname}/{row}"] = {**{k: v for k, v in group.items() if k != "rows"}, "row": row}
    return out


def missing_runs(collected: dict) -> list[str]:
    return [r["name"] for g in collected.values() for r in g["rows"] if r["gen_ppl"] is None]


def sweep(groups: dict, jobs: int, cwd: Path | str = ".", run: bool = True) -> dict:
    """Queue and run every run of ``groups``, then merge their metrics into reports/ablations.json."""
    if run:
        for group in groups.values():
            for name, overrides in group["runs"].items():
                queue_experiment(name, overrides, cwd)
        run_queue(jobs, cwd)
    out_path = Path(cwd) / OUT
    collected = collect(groups, cwd)
    previous = read_json(out_path) if out_path.exists() else {}
    write_json(out_path, {**previous, **collected})
    return collected


def _pick(metrics: dict) -> dict:
    return {k: metrics.get(k) for k in METRIC_KEYS}


def main() -> None:
    from textdiff.config import load_params

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", type=Path, default=ABLATIONS)
    parser.add_argument("--only", help="run only this group")
    parser.add_argument("--jobs", type=int, help="experiments at a time (default: orchestration.sweep_jobs)")
    parser.add_argument("--collect-only", action="store_true", help="do not run, only collect existing experiments")
    args = parser.parse_args()
    groups = load_groups(args.file)
    if args.only:
        if args.only not in groups:
            sys.exit(f"no group {args.only!r} in {args.file}; groups: {', '.join(groups)}")
        groups = {args.only: groups[args.only]}
    jobs = args.jobs or load_params().orchestration.sweep_jobs
    collected = sweep(groups, jobs, run=not args.collect_only)
    failed = missing_runs(collected)
    if failed:
        sys.exit(f"[ablate] no metrics for {', '.join(failed)}: see `dvc queue status` and `dvc queue logs NAME`")
    print(f"[ablate] wrote {OUT}; run `dvc repro report` to refresh reports/report.md")


if __name__ == "__main__":
    main()
