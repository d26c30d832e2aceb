"""A temp copy of the repository on a params profile, for tests that run DVC and Prefect for real."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from pipelines.profile import sync
from tests.reference_rows import profile_raw

ROOT = Path(__file__).resolve().parents[1]


VENV = Path(sys.executable).parents[1]  # the environment running the tests (make test: the repo's .venv)
VENV_TOOLS = ("dvc", "prefect")


def path_without_venv() -> str:
    """PATH as a user has it with the venv *not* activated: tools are called as .venv/bin/NAME, stages
    find their interpreter through bin/py."""
    return os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                           if p and Path(p).resolve() != (VENV / "bin").resolve())


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command as README writes it: ``dvc``/``prefect`` are the venv's (``.venv/bin/dvc``), and the
    venv is not on PATH."""
    if cmd[0] in VENV_TOOLS:
        cmd = [str(VENV / "bin" / cmd[0]), *cmd[1:]]
    env = {**os.environ, "PATH": path_without_venv(), "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled",
           "DVC_NO_ANALYTICS": "1"}
    env.pop("VIRTUAL_ENV", None)
    env.pop("TEXTDIFF_PYTHON", None)
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out


def tiny_repo(dest: Path, **overrides) -> Path:
    """The repository's source files as a profile workspace gets them (pipelines/profile.py), profiles/tiny.yaml
    over the shipped params.yaml as params (top-level keys replaced by ``overrides``), in a fresh git repository
    with one commit and a local git identity."""
    sync(ROOT, dest)  # what `make repro PROFILE=…` copies into its workspace: code and inputs, no outputs
    params = profile_raw("tiny", **overrides)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    link_venv(dest)
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "ci@example.com"],
                ["git", "config", "user.name", "ci"], ["git", "add", "-A"], ["git", "commit", "-qm", "tiny"]):
        run(cmd, dest)
    return dest


def commit_all(repo: Path, message: str) -> None:
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", message, "--allow-empty"], repo)


def link_venv(clone: Path) -> None:
    """A clone after `make install`: its .venv (git-ignored) is the test environment."""
    if not (clone / ".venv").exists():
        (clone / ".venv").symlink_to(VENV, target_is_directory=True)
