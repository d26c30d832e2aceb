import json

import pytest

from textdiff.io import atomic_path, read_jsonl, write_json
from textdiff.tracking import Tracker


def test_atomic_write_keeps_the_old_file_when_interrupted(tmp_path):
    target = tmp_path / "m.json"
    write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text('{"v": 2, "half')
            raise RuntimeError("killed")
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_read_jsonl_names_the_bad_line(tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_text('{"a": 1}\n{oops\n')
    with pytest.raises(ValueError, match=r"x.jsonl:2"):
        read_jsonl(f)


def test_an_offline_wandb_run_looks_up_no_host(tmp_path):
    """Every name look-up of a training run's tracker, in a fresh process, recorded by an audit hook that runs
    after wandb's own exit handlers (before: wandb's telemetry looked up its server at finish)."""
    import subprocess
    import sys
    from pathlib import Path
    script = tmp_path / "track.py"
    script.write_text(
        "import atexit, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})\n"
        "hosts = []\n"
        "sys.addaudithook(lambda ev, args: hosts.append(args[0]) if ev in ('socket.getaddrinfo', "
        "'socket.gethostbyname', 'socket.gethostbyname_ex', 'socket.gethostbyaddr') else None)\n"
        "atexit.register(lambda: print('looked up:', hosts))\n"
        "from textdiff.tracking import Tracker\n"
        f"tracker = Tracker('unit', {{'lr': 0.1}}, mode='offline', folder={str(tmp_path)!r})\n"
        "tracker.log({'train/loss': 1.5}, step=1)\n"
        "tracker.finish()\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "looked up: []", out.stdout


def test_wandb_offline_run_writes_locally(tmp_path):
    tracker = Tracker("unit", {"lr": 0.1}, mode="offline", folder=tmp_path)
    tracker.log({"train/loss": 1.5}, step=1)
    tracker.summary({"final": 1.0})
    tracker.finish()
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].rglob("*.wandb"))


def test_evaluation_runs_carry_data_params_and_the_pipeline_group(tmp_path, monkeypatch):
    """An offline wandb run of a row's evaluation: grouped by pipeline run, with the data params and hash."""
    import stages.common as common
    import stages.evaluate as evaluate
    from textdiff.config import parse_params

    prepared = tmp_path / "prepared"
    write_json(prepared / "stats.json", {"data_sha256": "ab" * 32})
    write_json(prepared / "params.json", {"seed": 0, "data": {"source": "rotten_tomatoes"}})  # as prepare records it
    monkeypatch.setattr(common, "PREPARED", prepared)
    monkeypatch.setenv("TEXTDIFF_RUN_GROUP", "run-42")
    monkeypatch.chdir(tmp_path)
    p = parse_params({"rows": {"ar": {"family": "ar"}}, "tracking": {"wandb_mode": "offline"}})
    seen = {}
    real_finish = Tracker.finish

    def finish(self):
        seen.update(group=self.run.group, job=self.run.job_type, config=dict(self.run.config),
                    summary={k: self.run.summary[k] for k in ("mauve", "gen_ppl")})
        real_finish(self)

    monkeypatch.setattr(Tracker, "finish", finish)
    evaluate.log_to_wandb(p, "ar", {"mauve": 0.5, "gen_ppl": 80.0, "mauve_ci": [0.4, 0.6], "judge": "judge"})
    assert seen["group"] == "run-42" and seen["job"] == "evaluate"
    assert seen["config"]["data"]["source"] == "rotten_tomatoes" and seen["config"]["data_sha256"] == "ab" * 32
    assert seen["config"]["ar"]["model"]["d_model"] == p.row("ar").model.d_model
    assert seen["summary"] == {"mauve": 0.5, "gen_ppl": 80.0}


def test_the_work_pool_deployment_carries_the_interpreter_and_offline_settings(tmp_path):
    """A worker's flow run finds the clone's .venv interpreter (TEXTDIFF_PYTHON) and runs offline."""
    from pipelines.deploy import run_environment

    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").write_text("")
    job = run_environment(tmp_path)
    assert "working_dir" not in job  # the code comes from the deployment's git source, cloned per run
    assert job["env"]["TEXTDIFF_PYTHON"] == str(tmp_path / ".venv" / "bin" / "python")
    assert job["env"]["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false" and job["env"]["HF_HUB_OFFLINE"] == "1"


def test_bin_py_finds_the_venv_above_a_dvc_temp_workspace(tmp_path):
    """`dvc exp run --temp` runs stages in .dvc/tmp/exps/…: bin/py walks up to the clone's .venv."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    workspace = tmp_path / ".dvc" / "tmp" / "exps" / "tmpabc"
    workspace.mkdir(parents=True)
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parents[1], target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "TEXTDIFF_PYTHON")}
    env["PATH"] = "/usr/bin:/bin"
    out = subprocess.run([str(root / "bin" / "py"), "-c", "import sys; print(sys.prefix)"], cwd=workspace, env=env,
                         capture_output=True, text=True, check=True)
    assert Path(out.stdout.strip()).resolve() == Path(sys.prefix).resolve()
    env["TEXTDIFF_PYTHON"] = "/usr/bin/python3"
    out = subprocess.run([str(root / "bin" / "py"), "-c", "import sys; print(sys.executable)"], cwd=workspace,
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "/usr/bin/python3"


def test_only_a_refused_write_is_reported_as_one(tmp_path):
    """A missing file inside a write block keeps its own error; a full disk (ENOSPC) becomes one line."""
    import errno

    from textdiff.errors import InputError
    with pytest.raises(FileNotFoundError):
        with atomic_path(tmp_path / "out.json"):
            (tmp_path / "no-such-input.txt").read_text()
    with pytest.raises(InputError, match=r"could not write .*out.json \(OSError: \[Errno 28\].*free space"):
        with atomic_path(tmp_path / "out.json"):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
