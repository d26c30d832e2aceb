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
task that completes as ``skipped``. Without a DVC remote a stage runs as ``make repro`` runs it
(``pipelines.warm``: one DVC repository open in the flow's process records it in ``dvc.lock``, its command
runs in a child of a forkserver that imported the stage modules once), so the flow pays no DVC and Python
start-up per stage either; with a remote, as ``dvc repro --single-item --pull`` (below). A failing stage is retried with
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

Stages can run on two pools. With ``orchestration.gpu_pool`` set (and a remote), each stage of a kind in
``orchestration.gpu_stages`` (training and sampling by default) that must run is sent to that pool: the
task starts a run of the deployment ``textdiff-pipeline/textdiff-gpu-stages`` (``pipelines.deploy pool``
registers it there) for that one stage and waits for it. That run, on a GPU worker, in a fresh checkout of
the committed code, is this same flow with ``stages=[STAGE]`` and no routing: it restores the stages the one
it runs needs from the remote's run cache (this run pushed each as it finished), runs it and pushes it. Back
here the task restores the stage from the run cache, so this checkout's ``dvc.lock`` records it as if it had
run here, and the flow goes on. Everything else runs where the flow runs (the CPU pool's worker).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.tasks import exponential_backoff

from pipelines import prefect_api
from pipelines.schedule import StageFailed, StageProgress, dvc, output_lines, plan, run_as_ready, \
    run_stage as run_dvc_stage, stages_to_run, thread_share  # noqa: F401 (also read from here by tests, callers)
from pipelines.warm import WarmStages
from textdiff.config import load_params

# The warm runner of each flow run without a remote, by repository folder: the stage tasks (threads of the flow's
# process, Prefect's thread-pool task runner) share its DVC repository and forkserver.
WARM: dict[str, WarmStages] = {}

def log_stage_output(text: str) -> None:
    logger = get_run_logger()
    for line in output_lines(text):
        logger.info(line)


GPU_STAGES_DEPLOYMENT = "textdiff-gpu-stages"  # this flow, on orchestration.gpu_pool, one routed stage per run


@task(task_run_name="{stage}")
def run_stage(stage: str, repo_dir: str, needed: bool, remote: str | None = None, threads: int | None = None,
              elsewhere: str | None = None, elsewhere_timeout_s: float | None = None) -> str:
    """Run one DVC stage if DVC says it must; returns 'ran', 'skipped' (up to date) or 'restored'
    (DVC's run cache had this exact run: outputs checked out, nothing recomputed). ``threads``: the stage's
    share of the cores when stages run side by side. ``elsewhere``: a deployment of this flow that runs the
    stage first (on another pool), waited for up to ``elsewhere_timeout_s``; it is then restored here from
    the remote's run cache."""
    cwd = Path(repo_dir)
    outcome = "skipped"
    if needed and remote:  # what another worker may have pushed since the run started
        dvc("pull", "--remote", remote, "--run-cache", "--allow-missing", stage, cwd=cwd, check=False)
    routed = needed and elsewhere and stage in json.loads(dvc("status", "--json", stage, cwd=cwd).stdout or "{}")
    if routed:
        run_on_pool(stage, elsewhere, remote, elsewhere_timeout_s)
        dvc("pull", "--remote", remote, "--run-cache", "--allow-missing", stage, cwd=cwd, check=False)
    if needed:
        try:
            outcome, stdout, _ = run_here(stage, cwd, threads, pull=bool(remote))
        except StageFailed as failed:
            log_stage_output(failed.stdout)
            log_stage_output(failed.stderr)
            raise
        log_stage_output(stdout)
        if routed and outcome == "ran":
            raise StageFailed(f"stage {stage} ran on {elsewhere}, but what it pushed is not this checkout's run "
                              "(other code or params: commit and push them on the branch the deployment pulls); "
                              "it has now run here too")
    get_run_logger().info(f"{stage}: {outcome}")
    if remote and outcome != "skipped":  # publish it at once, so that no other worker recomputes it
        dvc("push", "--remote", remote, "--run-cache", stage, cwd=cwd)
    return outcome


def run_here(stage: str, cwd: Path, threads: int | None, pull: bool) -> tuple[str, str, str]:
    """(outcome, stdout, stderr) of one stage on this worker: through this flow run's warm runner when it has
    one (no remote), else ``dvc repro --single-item`` (``--pull`` with a remote)."""
    warm = WARM.get(str(cwd))
    if warm is None or pull:
        return run_dvc_stage(stage, cwd, threads, pull=pull)
    outcome, output = warm.run(stage)
    return outcome, output, ""


def run_on_pool(stage: str, deployment: str, remote: str, timeout_s: float | None) -> None:
    """A run of ``deployment`` (this flow, on another pool) for ``stage`` alone, waited for up to
    ``timeout_s``; it pushes the stage's outputs and run-cache entry to ``remote``. Raises StageFailed when
    that run does not complete in time."""
    from prefect.deployments import run_deployment

    logger = get_run_logger()
    logger.info(f"{stage}: sent to {deployment}")
    flow_run = run_deployment(name=f"{pipeline.name}/{deployment}",
                              parameters={"repo_dir": ".", "stages": [stage], "remote": remote, "route": False},
                              timeout=timeout_s)
    if not flow_run.state.is_completed():
        raise StageFailed(f"stage {stage}: flow run {flow_run.name} of {deployment} is {flow_run.state.name} "
                          f"(after at most {timeout_s} s; is a worker polling its pool?): see that run's log")
    logger.info(f"{stage}: done in flow run {flow_run.name} of {deployment}")


def routing(settings, remote: str | None, route: bool):
    """Which deployment runs a stage of each kind (None: this run): ``gpu_stages`` kinds go to the GPU pool's
    deployment when ``gpu_pool`` is set and this run routes."""
    if not (route and settings.gpu_pool):
        return lambda stage: None
    if not remote:
        raise ValueError(f"orchestration.gpu_pool is {settings.gpu_pool!r} but there is no DVC remote "
                         "(orchestration.remote or --remote): the GPU pool's runs hand their outputs back through it")
    kinds = set(settings.gpu_stages)
    return lambda stage: GPU_STAGES_DEPLOYMENT if stage.split("@")[0] in kinds else None


@flow(name="textdiff-pipeline", log_prints=True)
def pipeline(repo_dir: str = ".", stages: list[str] | None = None, remote: str | None = None,
             retries: int | None = None, retry_backoff_s: float | None = None,
             concurrency: int | None = None, route: bool = True) -> dict[str, str]:
    """Run the DVC pipeline, each stage once its upstreams are done, ``concurrency`` at once (default
    ``orchestration.concurrency``); returns {stage: 'ran' | 'skipped' | 'restored'} in DVC's order.
    ``route``: send the ``orchestration.gpu_stages`` to ``orchestration.gpu_pool`` when that is set (the
    runs on that pool pass False)."""
    cwd = Path(repo_dir).resolve()
    settings = load_params(cwd / "params.yaml").orchestration
    remote = remote or settings.remote
    retries = settings.retries if retries is None else retries
    backoff = settings.retry_backoff_s if retry_backoff_s is None else retry_backoff_s
    concurrency = settings.concurrency if concurrency is None else concurrency
    deployment_for = routing(settings, remote, route)
    stage_task = run_stage.with_options(retries=retries, retry_delay_seconds=exponential_backoff(backoff)
                                        if retries and backoff > 0 else 0)
    p = plan(cwd, remote)
    os.environ["TEXTDIFF_RUN_GROUP"] = f"prefect-{flow_run_id()}"  # the wandb group of this run's stages
    selected = p.select(stages)
    threads = thread_share(concurrency)

    def submit(stage: str, outcome: dict[str, str]):
        if stage in p.ran:  # already run by the plan, whose status of every later stage accounts for it
            return p.ran[stage]
        return stage_task.submit(stage, str(cwd), p.must_run(stage, outcome), remote, threads, deployment_for(stage),
                                 settings.gpu_timeout_s)

    progress = StageProgress(len(stages_to_run(p, selected)), concurrency)

    def finished(stage: str, result: str, seconds: float) -> None:
        progress.finished(stage, result, seconds)
        print(f"[flow] {stage}: {result} in {seconds:.1f}s; {progress.line()}")

    if not remote:
        WARM[str(cwd)] = WarmStages(cwd, threads, on_progress=lambda stage, line: print(f"   {stage} | {line}"))
    try:
        outcome = run_as_ready(selected, p.upstream, submit, concurrency, on_finished=finished)
    finally:
        warm = WARM.pop(str(cwd), None)
        if warm is not None:
            warm.close()  # the dvc.lock entries still due
    if remote:  # publish what this worker has, computed or not: one bulk push (naming the 68 stages of the tiny
        dvc("push", "--remote", remote, "--run-cache", cwd=cwd)  # profile made DVC take 106 s instead of 1.5 s)
    publish_report(cwd, outcome)
    return outcome


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
    parser.add_argument("--concurrency", type=int, default=None,
                        help="stages at once (default: orchestration.concurrency)")
    args = parser.parse_args()
    settings = load_params(Path(args.repo) / "params.yaml").orchestration
    with prefect_api(settings.server_startup_timeout_s):
        outcome = pipeline(repo_dir=args.repo, stages=args.stages, remote=args.remote, concurrency=args.concurrency)
    ran = [s for s, o in outcome.items() if o == "ran"]
    print(f"[flow] {len(ran)} stage(s) ran, {len(outcome) - len(ran)} up to date")


if __name__ == "__main__":
    main()
