"""Run ablations as DVC experiments and collect their metrics for the report.

    python -m pipelines.ablate [--file ablations.yaml] [--only GROUP]

Each group in ablations.yaml names a model and a set of runs; each run is a
list of param overrides passed to ``dvc exp run --temp -S``. DVC re-runs only
the stages those params feed (a sampling override re-samples and re-evaluates;
a model override retrains), restoring everything else from its run cache.
The collected metrics go to reports/ablations.json, which the report stage
turns into tables. Experiments run from the last git commit: commit code first.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

from textdiff.io import read_json, write_json

ABLATIONS = Path("ablations.yaml")
OUT = Path("reports/ablations.json")
METRIC_KEYS = ("gen_ppl", "gen_ppl_sample_mean", "entropy", "div", "mem", "mauve", "samples_per_s")


def load_groups(path: Path) -> dict:
    groups = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for name, group in groups.items():
        for key in ("model", "runs"):
            if key not in group:
                raise ValueError(f"{path}: group {name!r} needs {key!r}")
        for run, overrides in group["runs"].items():
            if not isinstance(overrides, list) or not all(isinstance(o, str) and "=" in o for o in overrides):
                raise ValueError(f"{path}: {name}.runs.{run} must be a list of 'key=value' overrides")
    return groups


def dvc(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run(["dvc", *args], capture_output=True, text=True)
    if check and out.returncode != 0:
        raise RuntimeError(f"dvc {' '.join(args)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return out


def run_experiment(name: str, overrides: list[str]) -> None:
    dvc("exp", "remove", name, check=False)
    args = ["exp", "run", "--temp", "-n", name]
    for o in overrides:
        args += ["-S", o]
    print(f"[ablate] {name}: {' '.join(overrides)}", flush=True)
    dvc(*args)


def experiment_metrics(model: str) -> dict[str, dict]:
    """Metrics of ``metrics/eval/MODEL.json`` for every experiment, by experiment name."""
    rows = json.loads(dvc("exp", "show", "--json").stdout)
    found: dict[str, dict] = {}

    def visit(entry: dict) -> None:
        name = entry.get("name") or entry.get("rev")
        data = (entry.get("data") or {}).get("metrics") or {}
        metrics = (data.get(f"metrics/eval/{model}.json") or {}).get("data")
        if name and metrics:
            found[name] = metrics
        for child in entry.get("experiments") or []:
            for exp in child.get("revs") or [child]:
                visit(exp)

    for entry in rows:
        visit(entry)
    return found


def collect(groups: dict) -> dict:
    out = {}
    for gname, group in groups.items():
        metrics = experiment_metrics(group["model"])
        baseline = Path(f"metrics/eval/{group['model']}.json")
        rows = []
        if baseline.exists():
            rows.append({"name": "baseline (params.yaml)", "overrides": [], **_pick(read_json(baseline))})
        for run, overrides in group["runs"].items():
            rows.append({"name": run, "overrides": overrides, **_pick(metrics.get(run, {}))})
        out[gname] = {"description": group.get("description", ""), "model": group["model"], "rows": rows}
    return out


def _pick(metrics: dict) -> dict:
    return {k: metrics.get(k) for k in METRIC_KEYS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", type=Path, default=ABLATIONS)
    parser.add_argument("--only", help="run only this group")
    parser.add_argument("--collect-only", action="store_true", help="do not run, only collect existing experiments")
    args = parser.parse_args()
    groups = load_groups(args.file)
    if args.only:
        if args.only not in groups:
            sys.exit(f"no group {args.only!r} in {args.file}; groups: {', '.join(groups)}")
        groups = {args.only: groups[args.only]}
    if not args.collect_only:
        for group in groups.values():
            for run, overrides in group["runs"].items():
                run_experiment(run, overrides)
    previous = read_json(OUT) if OUT.exists() else {}
    write_json(OUT, {**previous, **collect(groups)})
    print(f"[ablate] wrote {OUT}; run `dvc repro report` to refresh reports/report.md")


if __name__ == "__main__":
    main()
