"""Prefect over the DVC stages, for real: a tiny pipeline in a temp copy under prefect_test_harness."""

import json
import os
import time
from pathlib import Path

import pytest
import yaml

from tests.repo_copy import commit_all, link_venv, run, tiny_repo
from tests.reference_rows import profile_raw

pytestmark = pytest.mark.slow

AR_ONLY = {"rows": {"ar": profile_raw("tiny")["rows"]["ar"]}}


@pytest.fixture(scope="module")
def prefect_env(tmp_path_factory):
    """An ephemeral Prefect API with its state in a temp PREFECT_HOME, offline."""
    home = tmp_path_factory.mktemp("prefect_home")
    saved = {k: os.environ.get(k) for k in ("PREFECT_HOME", "PREFECT_SERVER_ANALYTICS_ENABLED")}
    os.environ.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    return tiny_repo(tmp_path_factory.mktemp("flow_repo"), **AR_ONLY)


@pytest.fixture(scope="module")
def first_run(prefect_env, repo):
    from pipelines.flow import pipeline

    return pipeline(repo_dir=str(repo), retry_backoff_s=0, concurrency=2)  # stages side by side, for real


def add_stage(repo: Path, name: str, cmd: str, outs: list[str]) -> None:
    dvc_yaml = repo / "dvc.yaml"
    spec = yaml.safe_load(dvc_yaml.read_text())
    spec["stages"][name] = {"cmd": cmd, "outs": outs}
    dvc_yaml.write_text(yaml.safe_dump(spec, sort_keys=False))


def test_flow_runs_the_pipeline_stage_by_stage(repo, first_run):
    assert list(first_run)[:4] == ["code", "validate", "prepare", "tokenizer"] and list(first_run)[-1] == "report"
    assert set(first_run) >= {"train@ar", "sample@ar", "likelihood@ar", "evaluate@ar", "evaluate_reference"}
    assert set(first_run.values()) == {"ran"}
    assert "| ar |" in (repo / "reports" / "report.md").read_text()
    assert run(["dvc", "status"], repo).stdout.strip().endswith("up to date.")


def test_report_tables_are_published_as_an_artifact(first_run):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        artifacts = [a for a in client.read_artifacts() if a.key == "textdiff-report"]
    assert artifacts and "| ar |" in artifacts[0].data and "## Held-out likelihood" in artifacts[0].data


def test_second_run_skips_every_stage(repo, first_run):
    from pipelines.flow import pipeline

    t0 = time.perf_counter()
    outcome = pipeline(repo_dir=str(repo))
    print(f"no-op flow run: {time.perf_counter() - t0:.1f}s for {len(outcome)} stages")
    assert outcome.keys() == first_run.keys() and set(outcome.values()) == {"skipped"}


def test_without_a_remote_a_stage_runs_warm_as_under_make_repro(repo, first_run, monkeypatch):
    """The flow runs a stage through pipelines.warm (no `dvc repro` process per stage) and records it in
    dvc.lock as `dvc repro` would: with the cold path made to fail, a stage that must run still runs."""
    import pipelines.flow as flow_module

    def no_cold_start(*args, **kwargs):
        raise AssertionError("the flow started `dvc repro --single-item` without a remote")

    monkeypatch.setattr(flow_module, "run_dvc_stage", no_cold_start)
    (repo / "reports" / "report.md").unlink()  # the report must run again (or come back from the run cache)
    outcome = flow_module.pipeline(repo_dir=str(repo), stages=["report"])
    assert outcome["report"] in ("ran", "restored") and (repo / "reports" / "report.md").exists()
    assert not flow_module.WARM  # the runner is closed when the run ends
    assert run(["dvc", "status"], repo).stdout.strip().endswith("up to date.")


def test_a_stage_that_fails_once_is_retried(repo, first_run):
    from pipelines.flow import pipeline

    (repo / "flaky.py").write_text(
        "from pathlib import Path\n"
        "tries = Path('attempts.txt')\n"
        "tries.write_text(tries.read_text() + 'x' if tries.exists() else 'x')\n"
        "if len(tries.read_text()) == 1:\n"
        "    raise SystemExit('flaky: first attempt fails')\n"
        "Path('flaky.out').write_text('ok')\n")
    add_stage(repo, "flaky", "python flaky.py", ["flaky.out"])
    outcome = pipeline(repo_dir=str(repo), stages=["flaky"], retries=2, retry_backoff_s=0)
    assert outcome == {"flaky": "ran"}
    assert (repo / "attempts.txt").read_text() == "xx" and (repo / "flaky.out").read_text() == "ok"


def test_a_stage_that_keeps_failing_fails_the_run_with_its_error(repo, first_run):
    from pipelines.flow import pipeline

    add_stage(repo, "broken", "python -c \"raise SystemExit('broken: corpus file is missing')\"", ["broken.out"])
    try:
        state = pipeline(repo_dir=str(repo), stages=["broken"], retries=1, retry_backoff_s=0, return_state=True)
        assert state.is_failed()
        with pytest.raises(Exception, match="broken: corpus file is missing"):
            state.result()
    finally:
        spec = yaml.safe_load((repo / "dvc.yaml").read_text())
        spec["stages"].pop("broken")
        (repo / "dvc.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


def test_a_local_remote_shares_outputs_between_clones(repo, first_run, tmp_path):
    """Clone A pushes every stage's outputs; clone B (git clone of A) pulls them: nothing recomputes."""
    from pipelines.flow import pipeline

    remote = tmp_path / "dvc-remote"
    run(["dvc", "remote", "add", "-f", "-d", "shared", str(remote)], repo)
    outcome_a = pipeline(repo_dir=str(repo), remote="shared")
    assert "ran" not in outcome_a.values() and any(remote.rglob("*"))
    commit_all(repo, "lock and remote")
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    link_venv(clone)
    assert not (clone / "models" / "ar" / "model.safetensors").exists()
    outcome_b = pipeline(repo_dir=str(clone), remote="shared")
    assert "ran" not in outcome_b.values(), outcome_b
    assert (clone / "models" / "ar" / "model.safetensors").exists()
    assert run(["dvc", "status"], clone).stdout.strip().endswith("up to date.")

    # A worker whose checkout lacks the new dvc.lock restores every cached stage from the run cache;
    # only the report, whose outputs are not cached (cache: false), is rendered again, and the params check
    # (its output is persistent, which DVC never run-caches; it takes a second and writes constant bytes).
    stale = tmp_path / "stale"
    run(["git", "clone", "-q", str(repo), str(stale)], tmp_path)
    link_venv(stale)
    run(["git", "reset", "-q", "--hard", "HEAD~1"], stale)
    assert not (stale / "dvc.lock").exists()
    run(["dvc", "remote", "add", "-d", "shared", str(remote)], stale)
    outcome_c = pipeline(repo_dir=str(stale), remote="shared")
    assert {s for s, o in outcome_c.items() if o == "ran"} <= {"validate", "report"}, outcome_c
    assert outcome_c["prepare"] == "restored", outcome_c  # validate's output is byte-identical: nothing follows
    assert outcome_c["train@ar"] == "restored" and (stale / "models" / "ar" / "model.safetensors").exists()


def test_sweep_flow_runs_queued_experiments_and_tabulates_them(repo, first_run):
    from pipelines.sweep import sweep

    commit_all(repo, "before sweep")
    collected = sweep(repo_dir=str(repo), row="ar", group="top_p", description="nucleus",
                      runs={"p-90": ["rows.ar.sample.top_p=0.9"], "p-50": ["rows.ar.sample.top_p=0.5"]}, jobs=2)
    rows = {r["name"]: r for r in collected["top_p"]["rows"]}
    assert set(rows) == {"baseline (params.yaml)", "p-90", "p-50"}
    assert rows["p-90"]["gen_ppl"] != rows["p-50"]["gen_ppl"]
    assert json.loads((repo / "reports" / "ablations.json").read_text())["top_p"]["row"] == "ar"
    report = (repo / "reports" / "report.md").read_text()
    assert "### top_p (ar)" in report and "`rows.ar.sample.top_p=0.5`" in report


def test_sampling_runs_on_the_gpu_pool_and_comes_back_through_the_remote(repo, first_run, tmp_path, monkeypatch):
    """A real process worker on a second pool: with orchestration.gpu_pool set, the flow sends sample@ar to
    the textdiff-gpu-stages deployment (a flow run in the worker's own clone of the committed code), waits,
    and restores the stage here from the DVC remote's run cache; the other stages run here."""
    import subprocess

    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.settings import PREFECT_API_URL

    from pipelines.deploy import deploy_gpu_stages
    from pipelines.flow import GPU_STAGES_DEPLOYMENT, pipeline
    from tests.repo_copy import VENV

    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())  # the CLI and the worker: the harness's API
    remote = tmp_path / "dvc-remote"
    run(["dvc", "remote", "add", "-f", "-d", "shared", str(remote)], repo)
    pipeline(repo_dir=str(repo), remote="shared")  # the remote holds every output and run-cache entry
    params = repo / "params.yaml"
    original = params.read_text()
    raw = yaml.safe_load(original)
    raw["orchestration"] = {**raw.get("orchestration", {}), "gpu_pool": "test-gpu", "gpu_stages": ["sample"]}
    raw["rows"]["ar"].setdefault("sample", {})["temperature"] = 0.7
    before = (repo / "samples" / "ar.jsonl").read_text()
    worker = None
    try:
        params.write_text(yaml.safe_dump(raw, sort_keys=False))
        with pytest.raises(ValueError, match="orchestration.gpu_pool is 'test-gpu' but there is no DVC remote"):
            pipeline(repo_dir=str(repo), stages=["sample@ar"], remote=None)
        commit_all(repo, "sample at 0.7 on the gpu pool")  # what the worker's clone checks out
        deploy_gpu_stages(repo, "test-gpu")
        worker = subprocess.Popen([str(VENV / "bin" / "prefect"), "worker", "start", "--pool", "test-gpu",
                                   "--type", "process"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, env={**os.environ, "PREFECT_WORKER_QUERY_SECONDS": "1"})
        outcome = pipeline(repo_dir=str(repo), stages=["sample@ar"], remote="shared")
    finally:
        if worker is not None:
            worker.terminate()
            try:  # a worker's graceful shutdown on a loaded 2-core machine once took longer than 30 s (CI, AMD)
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(timeout=30)
        params.write_text(original)
        run(["dvc", "repro", "--single-item", "validate"], repo)
    assert outcome["sample@ar"] == "restored", outcome  # computed on the worker, restored here
    assert outcome["train@ar"] == "skipped"
    assert (repo / "samples" / "ar.jsonl").read_text() != before

    async def routed_runs():
        async with get_client() as client:
            return await client.read_flow_runs(deployment_filter=DeploymentFilter(
                name=DeploymentFilterName(any_=[GPU_STAGES_DEPLOYMENT])))

    import asyncio

    runs = asyncio.run(routed_runs())
    assert len(runs) == 1 and runs[0].state.is_completed(), runs
    assert runs[0].parameters["stages"] == ["sample@ar"] and runs[0].parameters["route"] is False

    # With no worker on the pool the routed stage fails after orchestration.gpu_timeout_s, naming why.
    raw["orchestration"]["gpu_timeout_s"] = 3
    raw["rows"]["ar"]["sample"]["temperature"] = 0.6
    try:
        params.write_text(yaml.safe_dump(raw, sort_keys=False))
        state = pipeline(repo_dir=str(repo), stages=["sample@ar"], remote="shared", retries=0, return_state=True)
        assert state.is_failed()
        with pytest.raises(Exception, match="is a worker polling its pool"):
            state.result()
    finally:
        params.write_text(original)
        run(["dvc", "repro", "--single-item", "validate"], repo)
