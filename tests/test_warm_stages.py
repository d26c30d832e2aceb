"""pipelines.warm, the stage runner of `make repro`, on a small DVC repository of its own: a stage runs in a
forked child and is recorded in dvc.lock as `dvc repro` would record it (skipped when unchanged, restored from
DVC's run cache, failures with their own lines, other commands through `dvc repro`).

Under pytest the forkserver imports this checkout's `stages` package (the test's folder is on sys.path), not
the small repository's: every run here also checks that a child runs the repository's own stage code
(pipelines.warm.use_repo_code)."""

import json
import sys
import shutil
from pathlib import Path

import pytest
import yaml

from pipelines.schedule import StageFailed
from pipelines.warm import WarmStages, module_command, run_child, same_environment
from tests.repo_copy import ROOT, run

ECHO = '''import os, sys
from pathlib import Path
text = Path("in.txt").read_text()
Path("out").mkdir(exist_ok=True)
Path("out/echo.txt").write_text(text.upper())
print("echo says", sys.argv[1], "in stage", os.environ["DVC_STAGE"], flush=True)
os.write(2, b"a line written below Python\\n")
'''
FAIL = '''print("reading the input", flush=True)
raise SystemExit("[fail] error: in.txt line 1 is not a number")
'''
BROKEN = "def main(:\n"
DVC_YAML = {"stages": {
    "broken": {"cmd": "bin/py -m stages.broken", "outs": ["out/broken.txt"]},
    "echo": {"cmd": "bin/py -m stages.echo hello", "deps": ["in.txt", "stages/echo.py"], "outs": ["out/echo.txt"]},
    "copy": {"cmd": "cp in.txt copy.txt", "deps": ["in.txt"], "outs": ["copy.txt"]},
    "fail": {"cmd": "bin/py -m stages.fail", "deps": ["in.txt"], "outs": ["out/fail.txt"]},
}}


@pytest.fixture
def repo(tmp_path) -> Path:
    (tmp_path / "stages").mkdir()
    (tmp_path / "stages" / "__init__.py").write_text("")
    (tmp_path / "stages" / "echo.py").write_text(ECHO)
    (tmp_path / "stages" / "fail.py").write_text(FAIL)
    (tmp_path / "stages" / "broken.py").write_text(BROKEN)
    (tmp_path / "bin").mkdir()
    shutil.copy2(ROOT / "bin" / "py", tmp_path / "bin" / "py")
    (tmp_path / "in.txt").write_text("first input\n")
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML, sort_keys=False))
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "ci@example.com"],
                ["git", "config", "user.name", "ci"], ["dvc", "init", "-q"], ["git", "add", "-A"],
                ["git", "commit", "-qm", "stages"]):
        run(cmd, tmp_path)
    return tmp_path


def lock_entries(repo: Path) -> dict:
    lock = repo / "dvc.lock"
    return yaml.safe_load(lock.read_text())["stages"] if lock.exists() else {}


def test_the_dvc_internals_the_runner_takes_its_steps_with_are_there(repo):
    """pipelines/warm.py calls DVC's own Stage and Repo methods (not its public API): each one, with the keywords
    it passes, on the DVC installed here. A DVC release that renames or drops one fails here, naming it."""
    import inspect

    import dvc
    from dvc.repo import Repo, lock_repo  # noqa: F401
    from dvc.stage.cache import RunCacheNotFoundError  # noqa: F401

    def accepts(function, *keywords):
        names = inspect.signature(function).parameters
        missing = [k for k in keywords if k not in names]
        assert not missing, f"DVC {dvc.__version__}: {function.__qualname__} takes no {missing}"

    accepts(Repo.__init__, "_wait_for_lock")
    with Repo(str(repo)) as dvc_repo:
        stage = next(s for s in dvc_repo.index.stages if s.name == "echo")
        accepts(stage.remove_outs, "ignore_remove", "force")
        accepts(stage.save, "run_cache")
        accepts(stage.dvcfile.dump_stages, "update_pipeline")
        for name in ("changed", "commit", "save_deps", "addressing", "cmd", "outs", "frozen", "wdir"):
            assert hasattr(stage, name), f"DVC {dvc.__version__}: Stage has no {name}"
        assert callable(dvc_repo.stage_cache.restore) and callable(dvc_repo.scm_context)


def test_module_commands_are_recognised_and_others_are_not():
    assert module_command("bin/py -m stages.train ar") == ("stages.train", ["ar"])
    assert module_command("bin/py -m stages.evaluate --reference") == ("stages.evaluate", ["--reference"])
    assert module_command("python -m stages.train ar") is None
    assert module_command("cp a b") is None
    assert module_command("bin/py -m 'unclosed") is None


def test_only_this_environment_runs_stages_warm(tmp_path):
    import sys

    assert same_environment(None) and same_environment(sys.executable)
    assert same_environment(str(Path(sys.prefix) / "bin" / "python3"))
    assert not same_environment(str(tmp_path / "other-venv" / "bin" / "python"))


def test_a_stage_runs_warm_and_is_recorded_as_dvc_repro_records_it(repo):
    warm = WarmStages(repo, threads=None)
    try:
        outcome, output = warm.run("echo")
        assert outcome == "ran"
        assert "echo says hello in stage echo" in output and "a line written below Python" in output
        assert "Running stage" not in output  # a forked child, not `dvc repro`
        assert (repo / "out" / "echo.txt").read_text() == "FIRST INPUT\n"
        outcome, output = warm.run("copy")
        assert outcome == "ran" and "Running stage 'copy'" in output  # not `bin/py -m`: `dvc repro --single-item`
        assert (repo / "copy.txt").read_text() == "first input\n"
    finally:
        warm.close()
    assert set(lock_entries(repo)) == {"echo", "copy"}
    assert "up to date" in run(["dvc", "status", "echo", "copy"], repo).stdout
    assert "Running stage" not in run(["dvc", "repro", "echo", "copy"], repo).stdout

    warm = WarmStages(repo, threads=None)
    try:
        assert warm.run("echo")[0] == "skipped"  # nothing it depends on changed
        (repo / "in.txt").write_text("second input\n")
        assert warm.run("echo")[0] == "ran"
        (repo / "in.txt").write_text("first input\n")
        assert warm.run("echo")[0] == "restored"  # DVC's run cache has the first run
        assert (repo / "out" / "echo.txt").read_text() == "FIRST INPUT\n"
    finally:
        warm.close()
    assert "up to date" in run(["dvc", "status", "echo", "copy"], repo).stdout


def test_a_failing_stage_raises_its_own_lines_and_keeps_what_finished(repo):
    warm = WarmStages(repo, threads=None)
    try:
        assert warm.run("echo")[0] == "ran"
        with pytest.raises(StageFailed) as failed:
            warm.run("fail")
    finally:
        warm.close()
    message = str(failed.value)
    assert "stage fail failed (exit 1)" in message
    assert "reading the input" in message and "in.txt line 1 is not a number" in message
    assert set(lock_entries(repo)) == {"echo"}  # the finished stage is recorded, the failed one is not
    status = json.loads(run(["dvc", "status", "--json"], repo).stdout or "{}")
    assert set(status) == {"broken", "copy", "fail"}



def test_a_stage_module_that_does_not_compile_fails_alone(repo):
    """The forkserver imports every stage module; one with a syntax error fails its own stage, not the rest."""
    warm = WarmStages(repo, threads=None)
    try:
        with pytest.raises(StageFailed, match="SyntaxError"):
            warm.run("broken")
        assert warm.run("echo")[0] == "ran"
    finally:
        warm.close()


REPEATS = 50  # 150 children: without the lock about one in 20 was wrong, so a 0.05 % chance to miss it


def test_children_started_from_several_threads_report_their_own_exit_codes():
    """multiprocessing is not thread-safe here: Process.start in one thread reads the exit codes of other
    threads' children, and without run_child's lock about one child in 20 was reported as 255 (3 threads)."""
    import multiprocessing
    import sys
    import threading

    context, turn = multiprocessing.get_context("forkserver"), threading.Lock()
    wrong, errors, done = [], [], []

    def start_many(offset: int) -> None:
        try:
            for i in range(REPEATS):
                code = (i + offset) % 3
                got = run_child(context, turn, exit_with, (code,))
                if got != code:
                    wrong.append((code, got))
                done.append(code)
        except Exception as err:  # a thread's exception must fail the test, not vanish with the thread
            errors.append(repr(err))

    threads = [threading.Thread(target=start_many, args=(k,)) for k in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[:3]
    assert len(done) == 3 * REPEATS and not wrong, wrong[:5]


def exit_with(code: int) -> None:
    """A child's body, importable by name (sys.exit itself may be another library's wrapper: wandb replaces it,
    and the forkserver cannot pickle the replacement)."""
    sys.exit(code)
