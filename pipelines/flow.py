"""The pipeline as a Prefect flow over the DVC stages.

    python -m pipelines.flow [--stage train@ar ...] [--remote NAME]      (make flow)

The DVC stages stay the one definition of the work; Prefect orchestrates them.
One Prefect task per DVC stage (``prepare``, ``train@ar``, …), each submitted as
soon as its DVC upstream stages have finished, at most ``orchestration.concurrency``
at once (independent rows train side by side; each stage gets its share of the
cores through OMP_NUM_THREADS). DVC judges what is up to date: one ``dvc status``
at the start lists the changed stages, and a stage runs (``dvc repro
--single-item``, waiting for DVC's repository lock, which DVC holds only while it
reads and records a stage, not while the stage's command runs) only if it is
listed or a stage upstream of it ran in this flow run; every other stage is a
task that completes as ``skipped``. A failing stage is retried with
exponential backoff (``orchestration.retries``, ``orchestration.retry_backoff_s``);
one that keeps failing fails the run with the stage's own error lines. Stage
output goes to the Prefect run log, and the report's tables are published as
a markdown artifact.

With a DVC remote (``--remote``, or ``orchestration.remote``), the run starts
with one pull of every selected stage's outputs and of DVC's run cache, then one
``dvc status``: a stage another worker computed is up to date here (its
``dvc.lock`` entry came with the git checkout) and costs no further DVC call. A
stage that still has to run pulls once more just before (another worker may
have finished it meanwhile), runs with ``--pull`` so that a run-cache hit (same
command, deps and params) is restored instead of recomputed, and pushes its
outputs and run-cache entry at once. The run ends with one push of everything
this worker has, computed or not (no stage names: DVC resolves each named target
on its own, 106 s for the tiny profile's 68 stages against 1.5 s for the bulk
push). A no-op run is three DVC calls, not three per stage.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.tasks import exponential_backoff

from pipelines import tool, tool_env
from textdiff.config import load_params

PROGRESS_MARKS = ("it/s]", "s/it]", "%|")


class StageFailed(RuntimeError):
    """A DVC stage exited non-zero; the message carries the stage's last error lines."""


@dataclass
class Plan:
    order: list[str]
    upstream: dict[str, set[str]]
    changed: set[str] = field(default_factory=set)
    ran: set[str] = field(default_factory=set)  # stages the plan itself ran (validate, when params changed)


def dvc(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run(tool("dvc", "--wait-for-lock", *args), cwd=cwd, capture_output=True, text=True,
                         env=tool_env())
    if check and out.returncode != 0:
        raise RuntimeError(f"dvc {' '.join(args)} failed ({out.returncode}):\n{out.stderr[-2000:] or out.stdout[-2000:]}")
    return out


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
    ran = set()
    if "validate" in changed:  # its data/params/ROW.yaml say which rows a params change reaches: bring them up to date
        dvc("repro", "--single-item", "validate", cwd=repo_dir)
        changed = set(json.loads(dvc("status", "--json", cwd=repo_dir).stdout or "{}")) | {"validate"}
        ran = {"validate"}
    return Plan(order, upstream, changed, ran)


def log_stage_output(text: str) -> None:
    logger = get_run_logger()
    for line in text.replace("\r", "\n").splitlines():
        if line.strip() and not any(mark in line for mark in PROGRESS_MARKS):
            logger.info(line)


@task(task_run_name="{stage}")
def run_stage(stage: str, repo_dir: str, needed: bool, remote: str | None = None, threads: int | None = None) -> str:
    """Run one DVC stage if DVC says it must; returns 'ran', 'skipped' (up to date) or 'restored'
    (DVC's run cache had this exact run: outputs checked out, nothing recomputed). ``threads``: the stage's
    share of the cores when stages run side by side."""
    cwd = Path(repo_dir)
    outcome = "skipped"
    if needed and remote:  # what another worker may have pushed since the run started
        dvc("pull", "--remote", remote, "--run-cache", "--allow-missing", stage, cwd=cwd, check=False)
    if needed:
        # --pull: a run-cache hit downloads the outputs it points to instead of recomputing them
        cmd = tool("dvc", "--wait-for-lock", "repro", "--single-item", *(["--pull"] if remote else []), stage)
        env = {**tool_env(), **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
        out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
        log_stage_output(out.stdout)
        if out.returncode != 0:
            log_stage_output(out.stderr)
            raise StageFailed(f"stage {stage} failed (exit {out.returncode}):\n"
                              + "\n".join(out.stderr.strip().splitlines()[-15:]))
        outcome = ("skipped" if f"Stage '{stage}' didn't change" in out.stdout
                   else "restored" if "skipping run, checking out outputs" in out.stdout else "ran")
    get_run_logger().info(f"{stage}: {outcome}")
    if remote and outcome != "skipped":  # publish it at once, so that no other worker recomputes it
        dvc("push", "--remote", remote, "--run-cache", stage, cwd=cwd)
    return outcome


@flow(name="textdiff-pipeline", log_prints=True)
def pipeline(repo_dir: str = ".", stages: list[str] | None = None, remote: str | None = None,
             retries: int | None = None, retry_backoff_s: float | None = None,
             concurrency: int | None = None) -> dict[str, str]:
    """Run the DVC pipeline, each stage once its upstreams are done, ``concurrency`` at once (default
    ``orchestration.concurrency``); returns {stage: 'ran' | 'skipped' | 'restored'} in DVC's order."""
    cwd = Path(repo_dir).resolve()
    settings = load_params(cwd / "params.yaml").orchestration
    remote = remote or settings.remote
    retries = settings.retries if retries is None else retries
    backoff = settings.retry_backoff_s if retry_backoff_s is None else retry_backoff_s
    concurrency = settings.concurrency if concurrency is None else concurrency
    stage_task = run_stage.with_options(retries=retries, retry_delay_seconds=exponential_backoff(backoff)
                                        if retries and backoff > 0 else 0)
    p = plan(cwd, remote)
    os.environ["TEXTDIFF_RUN_GROUP"] = f"prefect-{flow_run_id()}"  # the wandb group of this run's stages
    unknown = set(stages or []) - set(p.order)
    if unknown:
        raise ValueError(f"unknown stages {sorted(unknown)}; DVC has: {', '.join(p.order)}")
    wanted = set(stages or p.order)
    wanted |= {up for s in wanted for up in p.upstream[s]}  # like `dvc repro STAGE`: with what it needs
    selected = [s for s in p.order if s in wanted]
    threads = thread_share(concurrency)

    def submit(stage: str, outcome: dict[str, str]):
        if stage in p.ran:  # already run by the plan, whose status of every later stage accounts for it
            return "ran"
        needed = stage in p.changed or any(outcome.get(up) in ("ran", "restored") for up in p.upstream[stage] - p.ran)
        return stage_task.submit(stage, str(cwd), needed, remote, threads)

    outcome = run_as_ready(selected, p.upstream, submit, concurrency)
    if remote:  # publish what this worker has, computed or not: one bulk push (naming the 68 stages of the tiny
        dvc("push", "--remote", remote, "--run-cache", cwd=cwd)  # profile made DVC take 106 s instead of 1.5 s)
    publish_report(cwd, outcome)
    return outcome


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
                 poll_s: float = 0.1) -> dict[str, str]:
    """Submit each stage (``submit(stage, outcome so far)``: a Prefect future, or an outcome string) once every
    stage it depends on among ``stages`` has finished, keeping at most ``limit`` in flight; returns the
    outcomes in the order of ``stages``. A failed stage lets the running ones finish, submits nothing more and
    raises its error."""
    if limit < 1:
        raise ValueError(f"concurrency must be at least 1 (got {limit})")
    outcome: dict[str, str] = {}
    pending, running = list(stages), {}
    try:
        while pending or running:
            finished = [s for s, future in running.items() if future.wrapped_future.done()]  # no API call per poll
            for stage in finished:  # before anything new starts: a failure stops the run at once
                outcome[stage] = running.pop(stage).result()  # raises a failed stage's error
            ready = [s for s in pending if not (upstream[s] & set(pending) | upstream[s] & set(running))]
            for stage in ready[:max(0, limit - len(running))]:
                pending.remove(stage)
                result = submit(stage, outcome)
                if isinstance(result, str):
                    outcome[stage] = result
                else:
                    running[stage] = result
            if running and not finished:
                time.sleep(poll_s)
    except BaseException:
        for other in running.values():  # let the stages already running finish (DVC records them), then fail
            other.wait()
        raise
    return {s: outcome[s] for s in stages}


def flow_run_id() -> str:
    from prefect.runtime import flow_run

    return str(flow_run.id or "local")


def publish_report(cwd: Path, outcome: dict[str, str]) -> None:
    """The report's tables (comparison and held-out likelihood) as a Prefect markdown artifact."""
    report = cwd / "reports" / "report.md"
    ran = [s for s, o in outcome.items() if o == "ran"]
    summary = f"{len(ran)} stage(s) ran, {len(outcome) - len(ran)} skipped" + (f": {', '.join(ran)}" if ran else "")
    body = summary
    if report.exists():
        text = report.read_text(encoding="utf-8")
        body += "\n\n" + "\n\n".join(section(text, name) for name in ("Comparison", "Held-out likelihood"))
    create_markdown_artifact(key="textdiff-report", markdown=body, description="textdiff comparison tables")


def section(markdown: str, title: str) -> str:
    """The '## title' section of a markdown document, without images."""
    lines, keep = [], False
    for line in markdown.splitlines():
        if line.startswith("## "):
            keep = line[3:].strip() == title
        if keep and not line.startswith("!["):
            lines.append(line)
    return "\n".join(lines).strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", action="append", dest="stages", help="run only this stage and what it needs")
    parser.add_argument("--remote", help="DVC remote to pull from before and push to after each stage")
    parser.add_argument("--repo", default=".")
    args = parser.parse_args()
    outcome = pipeline(repo_dir=args.repo, stages=args.stages, remote=args.remote)
    ran = [s for s, o in outcome.items() if o == "ran"]
    print(f"[flow] {len(ran)} stage(s) ran, {len(outcome) - len(ran)} up to date")


if __name__ == "__main__":
    main()
