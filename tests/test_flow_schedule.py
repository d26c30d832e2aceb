"""How the flow schedules stages (pipelines/flow.run_as_ready) and how its deployments are limited, without a
Prefect server: real threads stand in for the task runner; tests/test_flow.py runs the real flow."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from pipelines.flow import run_as_ready


class ThreadFuture:
    """What run_as_ready reads of a Prefect future: ``wrapped_future`` (a concurrent future), ``result``, ``wait``."""

    def __init__(self, future):
        self.wrapped_future = future

    def result(self):
        return self.wrapped_future.result()

    def wait(self):
        self.wrapped_future.exception()


DAG = {"prepare": set(), "tokenizer": {"prepare"}, "train@a": {"prepare", "tokenizer"},
       "train@b": {"prepare", "tokenizer"}, "train@c": {"prepare", "tokenizer"},
       "report": {"prepare", "tokenizer", "train@a", "train@b", "train@c"}}


def scheduled(limit: int, fail: str | None = None, skip: str | None = None, log: dict | None = None):
    """Run DAG with stages that sleep 0.2 s; record when each started and ended and the most in flight."""
    pool, lock = ThreadPoolExecutor(max_workers=8), threading.Lock()
    log, in_flight, peak = {} if log is None else log, [0], [0]

    def work(stage):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        start = time.perf_counter()
        time.sleep(0.2)
        with lock:
            in_flight[0] -= 1
        log[stage] = (start, time.perf_counter())
        if stage == fail:
            raise RuntimeError(f"{stage} failed")
        return "ran"

    def submit(stage, outcome):
        assert all(outcome.get(up) for up in DAG[stage])  # every upstream has finished before a stage starts
        return "skipped" if stage == skip else ThreadFuture(pool.submit(work, stage))

    try:
        return run_as_ready(list(DAG), DAG, submit, limit, poll_s=0.01), log, peak[0]
    finally:
        pool.shutdown(wait=True)


def test_independent_stages_run_side_by_side_up_to_the_limit():
    outcome, log, peak = scheduled(limit=2)
    assert list(outcome) == list(DAG) and set(outcome.values()) == {"ran"}
    assert peak == 2  # three rows could run at once; the limit holds them to two
    assert log["tokenizer"][0] >= log["prepare"][1]
    assert log["report"][0] >= max(end for stage, (_, end) in log.items() if stage != "report")
    overlap = min(log["train@a"][1], log["train@b"][1]) - max(log["train@a"][0], log["train@b"][0])
    assert overlap > 0.1  # two rows trained at the same time


def test_a_limit_of_one_runs_the_stages_one_after_another():
    outcome, log, peak = scheduled(limit=1)
    assert peak == 1 and set(outcome.values()) == {"ran"}
    spans = sorted(log.values())
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))


def test_a_stage_given_an_outcome_needs_no_task():
    outcome, log, _ = scheduled(limit=2, skip="train@b")
    assert outcome["train@b"] == "skipped" and "train@b" not in log and outcome["report"] == "ran"


def test_a_failed_stage_lets_the_running_ones_finish_and_starts_nothing_more():
    log = {}
    with pytest.raises(RuntimeError, match="train@a failed"):
        scheduled(limit=3, fail="train@a", log=log)
    assert {"train@a", "train@b", "train@c"} <= set(log)  # the rows running beside it finished
    assert "report" not in log


def test_a_limit_below_one_is_refused_and_the_cores_are_shared_out(monkeypatch):
    from pipelines.flow import thread_share

    with pytest.raises(ValueError, match="concurrency must be at least 1 \\(got 0\\)"):
        run_as_ready(list(DAG), DAG, lambda stage, outcome: "ran", 0)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert (thread_share(1), thread_share(2), thread_share(3), thread_share(8)) == (None, 2, 1, 1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert thread_share(2) == 1  # never more than the caller allowed


def test_the_deployments_allow_one_run_at_a_time_and_the_pool_one_pulls_committed_code(tmp_path):
    import subprocess

    from pipelines.deploy import git_source, scheduled_deployment
    from tests.repo_copy import ROOT

    deployment = scheduled_deployment(ROOT)
    assert deployment.concurrency_limit == 1
    assert deployment.concurrency_options.collision_strategy.value == "ENQUEUE"
    for cmd in (["init", "-q", "-b", "work"], ["-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit",
                                               "-q", "--allow-empty", "-m", "first"]):
        subprocess.run(["git", *cmd], cwd=tmp_path, check=True)
    source = git_source(tmp_path)  # no origin: this clone, at its branch
    assert source._url == str(tmp_path) and source._branch == "work"


def test_make_repro_sums_the_seconds_of_each_kind_of_stage():
    from pipelines.parallel import time_table

    table = time_table({"train@a": (0.0, 10.0), "train@b": (5.0, 30.0), "report": (30.0, 31.5)}).splitlines()
    assert table[2] == "| train | 2 | 35 | 25 |"  # 10 + 25 seconds; the longest 25; listed first (most seconds)
    assert table[3] == "| report | 1 | 2 | 2 |"


def test_a_plan_selects_what_a_stage_needs_and_runs_what_changed_or_follows_a_run():
    from pipelines.schedule import Plan

    p = Plan(order=list(DAG), upstream=DAG, changed={"train@b"})
    assert p.select(["train@a"]) == ["prepare", "tokenizer", "train@a"]  # in DVC's order, with its upstreams
    assert p.select(None) == list(DAG)
    with pytest.raises(ValueError, match=r"unknown stages \['train@z'\]"):
        p.select(["train@z"])
    assert p.must_run("train@b", {}) and not p.must_run("train@a", {"prepare": "skipped", "tokenizer": "skipped"})
    assert p.must_run("report", {"train@a": "skipped", "train@b": "ran"})  # downstream of a stage that ran
    assert p.must_run("report", {"train@c": "restored"})
