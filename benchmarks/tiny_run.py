"""The time `make repro PROFILE=tiny` takes in a fresh clone, as a new user runs it.

    .venv/bin/python benchmarks/tiny_run.py [--flow] [--out benchmarks/results/tiny_run.json]

Clones this repository's HEAD into a temp folder, then runs `make install` and `make repro PROFILE=tiny` there
with a bare environment (the venv not activated, only /usr/local/bin:/usr/bin:/bin on PATH), timing each, and
counts the stages the run finished; then the same stages again from a fresh workspace with `dvc repro
--single-item` per stage (`pipelines.parallel --cold`: DVC and Python started for every stage). With ``--flow``,
the same stages as the Prefect flow (ephemeral Prefect server in a temp PREFECT_HOME, its start included), from a
fresh workspace with two stages at once and with one, then once more with nothing to do. The fp32 matmul peak of this machine (2 threads and 1) is measured after,
on the idle machine, so the figures can be compared across machines. Writes the record README quotes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

from textdiff.training.peak import matmul_peak

ROOT = Path(__file__).resolve().parents[1]
BARE_ENV = {"HOME": str(Path.home()), "PATH": "/usr/local/bin:/usr/bin:/bin"}


def timed(cmd: str, cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(["bash", "-c", cmd], cwd=cwd, env=BARE_ENV, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"{cmd} failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return seconds, out.stdout


def fresh_workspace(clone: Path) -> Path:
    subprocess.run(["rm", "-rf", str(clone / "runs")], check=True)
    timed(".venv/bin/python -m pipelines.profile tiny --prepare-only", clone)
    return clone / "runs" / "tiny"


def flow_times(clone: Path) -> dict:
    """Seconds of the flow over the tiny workspace: concurrency 2, 1 (each from scratch), and a no-op rerun."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="prefect-home-") as home:
        env = (f"PREFECT_HOME={home} PREFECT_SERVER_ANALYTICS_ENABLED=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 "
               "TOKENIZERS_PARALLELISM=false")
        for concurrency in (2, 1):
            work = fresh_workspace(clone)
            out[f"flow_concurrency_{concurrency}_s"], _ = timed(
                f"{env} ../../.venv/bin/python -m pipelines.flow --concurrency {concurrency}", work)
        out["flow_nothing_to_do_s"], _ = timed(f"{env} ../../.venv/bin/python -m pipelines.flow --concurrency 1", work)
    return {k: round(v) for k, v in out.items()}


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def peak_gflops(threads: int) -> float:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return round(matmul_peak(torch.device("cpu"), torch.float32) / 1e9, 1)
    finally:
        torch.set_num_threads(before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flow", action="store_true", help="also time the Prefect flow (about 12 minutes more)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "tiny_run.json")
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="textdiff-tiny-") as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        install_s, _ = timed("make install", clone)
        repro_s, log = timed("make repro PROFILE=tiny", clone)
        cold_s, _ = timed("../../.venv/bin/python -m pipelines.parallel --cold", fresh_workspace(clone))
        flows = flow_times(clone) if args.flow else {}
    record = {"what": f"make install, then make repro PROFILE=tiny, in a fresh clone of commit {commit} "
                      "(env -i: the venv not activated), 2 idle cores",
              "date": date.today().isoformat(), "cpu": cpu_name(), "cores": len(os.sched_getaffinity(0)),
              "fp32_matmul_peak_gflops_2_threads": peak_gflops(2), "fp32_matmul_peak_gflops_1_thread": peak_gflops(1),
              "install_s": round(install_s), "repro_s": round(repro_s), "repro_cold_s": round(cold_s),
              **flows,
              "stages": sum(line.rstrip().endswith("s") and "] done in " in line for line in log.splitlines())}
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
