"""Which DVC stages to run and in what order, without Prefect: shared by ``make repro`` (pipelines.parallel)
and the Prefect flow (pipelines.flow).

``plan`` reads DVC's stage graph and asks ``dvc status`` once which stages changed; ``run_as_ready`` submits
each stage as soon as every stage it depends on has finished, at most ``limit`` at once; ``run_stage`` runs one
with ``dvc repro --single-item``, waiting for DVC's repository lock (DVC holds it only while it reads and
records a stage, not while the stage's command runs), with its share of the cores (``thread_share``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipelines import tool, tool_env

PROGRESS_MARKS = ("it/s]", "s/it]", "%|")
PROGRESS_LINE = re.compile(r"^\[[^\]]+\] \d+/\d+ .*elapsed")  # textdiff.progress's lines in a log


class StageFailed(RuntimeError):
    """A DVC stage exited non-zero; the message carries the stage's last error lines."""

    def __init__(self, message: str, stdout: str = "", stderr: str = ""):
        super().__init__(message)
        self.stdout, self.stderr = stdout, stderr


@dataclass
class Plan:
    order: list[str]
    upstream: dict[str, set[str]]
    changed: set[str] = field(default_factory=set)
    ran: dict[str, str] = field(default_factory=dict)  # stages the plan itself ran (code, validate) -> outcome

    def select(self, stages: list[str] | None) -> list[str]:
        """``stages`` (every stage when None) with every stage they need, in DVC's order, as ``dvc repro
        STAGE`` would run them; an unknown name is an error that lists DVC's stages."""
        unknown = set(stages or []) - set(self.order)
        if unknown:
            raise ValueError(f"unknown stages {sorted(unknown)}; DVC has: {', '.join(self.order)}")
        wanted = set(stages or self.order)
        wanted |= {up for s in wanted for up in self.upstream[s]}
        return [s for s in self.order if s in wanted]

    def must_run(self, stage: str, outcome: dict[str, str]) -> bool:
        """DVC listed it as changed, or a stage it depends on ran (or was restored) in this run."""
        return stage in self.changed or any(outcome.get(up) in ("ran", "restored")
                                            for up in self.upstream[stage] - self.ran.keys())


def dvc(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run(tool("dvc", "--wait-for-lock", *args), cwd=cwd, capture_output=True, text=True,
                         env=tool_env())
    if check and out.returncode != 0:
        raise RuntimeError(f"dvc {' '.join(args)} failed ({out.returncode}):\n{out.stderr[-2000:] or out.stdout[-2000:]}")
    return out


FIRST_STAGES = ("code", "validate")  # what plan() brings up to date before it asks DVC what else changed


def plan(repo_dir: Path, remote: str | None) -> Plan:
    """DVC's stages in dependency order, each one's upstream stages, and (without a remote) the changed ones."""
    import networkx as nx
    from dvc.repo import Repo

    with Repo(str(repo_dir)) as repo:
        graph = repo.index.graph  # edges point from a stage to the stages it depends on
        order = [stage.name for stage in reversed(list(nx.topological_sort(graph)))]
        upstream = {stage.name: {d.name for d in nx.descendants(graph, stage)} for stage in graph}
    if remote:  # `dvc repro --pull` pulls from the default remote: make it this one, for this clone only
        dvc("remote", "default", "--local", remote, cwd=repo_dir)
        dvc("pull", "--remote", remote, "--run-cache", "--allow-missing", cwd=repo_dir, check=False)
    changed = set(json.loads(dvc("status", "--json", cwd=repo_dir).stdout or "{}"))
    ran = {}
    # code's digests say which stages a code change reaches, validate's data/params/ROW.yaml which rows a params
    # change reaches: bring them up to date first (from the run cache where it has them), then ask DVC again
    for first in FIRST_STAGES:
        if first in changed:
            ran[first] = run_stage(first, repo_dir, pull=bool(remote))[0]
            changed = set(json.loads(dvc("status", "--json", cwd=repo_dir).stdout or "{}")) | set(ran)
    return Plan(order, upstream, changed, ran)


def run_stage(stage: str, cwd: Path, threads: int | None = None, pull: bool = False) -> tuple[str, str, str]:
    """``dvc repro --single-item STAGE``: ('ran' | 'skipped' (up to date) | 'restored' (DVC's run cache had this
    exact run), stdout, stderr); raises StageFailed with the stage's last error lines. ``pull``: a run-cache hit
    downloads the outputs it points to instead of recomputing them."""
    cmd = tool("dvc", "--wait-for-lock", "repro", "--single-item", *(["--pull"] if pull else []), stage)
    env = {**tool_env(), **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise StageFailed(f"stage {stage} failed (exit {out.returncode}):\n"
                          + "\n".join(out.stderr.strip().splitlines()[-15:]), out.stdout, out.stderr)
    outcome = ("skipped" if f"Stage '{stage}' didn't change" in out.stdout
               else "restored" if "skipping run, checking out outputs" in out.stdout else "ran")
    return outcome, out.stdout, out.stderr


def output_lines(text: str) -> list[str]:
    """A stage's output without its progress bars."""
    return [line for line in text.replace("\r", "\n").splitlines()
            if line.strip() and not any(mark in line for mark in PROGRESS_MARKS) and not PROGRESS_LINE.match(line)]


def thread_share(concurrency: int) -> int | None:
    """Each stage's threads when ``concurrency`` run at once: the cores this process may use, shared out, and
    never more than an OMP_NUM_THREADS the caller set; None (the stage's own default) when one runs at a time."""
    if concurrency <= 1:
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    share = max(1, cores // concurrency)
    preset = os.environ.get("OMP_NUM_THREADS", "")
    return min(share, int(preset)) if preset.isdigit() and int(preset) > 0 else share


def run_as_ready(stages: list[str], upstream: dict[str, set[str]], submit, limit: int,
                 poll_s: float = 0.1, on_finished=None) -> dict[str, str]:
    """Submit each stage (``submit(stage, outcome so far)``: a Prefect or concurrent future, or an outcome string) once every
    stage it depends on among ``stages`` has finished, keeping at most ``limit`` in flight; returns the
    outcomes in the order of ``stages``. A failed stage lets the running ones finish, submits nothing more and
    raises its error. ``on_finished(stage, outcome, seconds)`` hears of each submitted stage that finished."""
    if limit < 1:
        raise ValueError(f"concurrency must be at least 1 (got {limit})")
    outcome: dict[str, str] = {}
    pending, running, started = list(stages), {}, {}
    try:
        while pending or running:
            finished = [s for s, future in running.items() if done(future)]
            for stage in finished:  # before anything new starts: a failure stops the run at once
                outcome[stage] = running.pop(stage).result()  # raises a failed stage's error
                if on_finished is not None:
                    on_finished(stage, outcome[stage], time.perf_counter() - started[stage])
            ready = [s for s in pending if not (upstream[s] & set(pending) | upstream[s] & set(running))]
            for stage in ready[:max(0, limit - len(running))]:
                pending.remove(stage)
                started[stage] = time.perf_counter()
                result = submit(stage, outcome)
                if isinstance(result, str):
                    outcome[stage] = result
                else:
                    running[stage] = result
            if running and not finished:
                time.sleep(poll_s)
    except BaseException:
        for other in running.values():  # let the stages already running finish (DVC records them), then fail
            wait(other)
        raise
    return {s: outcome[s] for s in stages}


def stages_to_run(p: Plan, selected: list[str]) -> list[str]:
    """The selected stages DVC will run: changed, or downstream of one that will (``Plan.must_run``)."""
    running: set[str] = set()
    for stage in selected:
        if stage not in p.ran and (stage in p.changed or p.upstream[stage] & running):
            running.add(stage)
    return [s for s in selected if s in running]


class StageProgress:
    """Stages done of those to run, with an ETA: the stages left at the mean time of those done, ``jobs`` at
    once (a rough guide: the training stages take longer than the rest)."""

    def __init__(self, total: int, jobs: int):
        self.total, self.jobs, self.done, self.ran, self.spent = total, max(jobs, 1), 0, 0, 0.0

    def finished(self, stage: str, outcome: str, seconds: float) -> None:
        """A stage of those to run ended; one DVC found unchanged after all counts as done at no cost (it is not
        part of the mean time)."""
        self.done += 1
        if outcome != "skipped":
            self.ran += 1
            self.spent += seconds

    def line(self) -> str:
        from textdiff.progress import clock

        left = max(self.total - self.done, 0)
        eta = f", ETA {clock(self.spent / self.ran * left / self.jobs)}" if self.ran and left else ""
        return f"{self.done}/{self.total} stages{eta}"


def done(future) -> bool:
    """Whether a Prefect future (its ``wrapped_future``: no API call per poll) or a concurrent future is done."""
    return getattr(future, "wrapped_future", future).done()


def wait(future) -> None:
    """Wait for a future to finish, without raising its error."""
    if hasattr(future, "wrapped_future"):
        future.wait()
    else:
        future.exception()
