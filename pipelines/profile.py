"""make repro PROFILE=NAME: the pipeline on a params profile, in a workspace of its own.

    python -m pipelines.profile NAME [--jobs N] [--prepare-only]

The workspace ``runs/NAME`` (git-ignored) holds the repository's tracked and new files as they are now (code,
dvc.yaml, corpus), its own ``params.yaml`` (this checkout's params.yaml with ``profiles/NAME.yaml`` applied as an
overlay: textdiff/profiles.py) and its own outputs, dvc.lock and report. The user's params.yaml and the default
run's outputs are never touched, and a second run of the same profile re-runs only what changed. The workspace is
its own git repository (DVC needs one) and uses this checkout's .venv.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from textdiff.params.base import ParamsError, read_yaml
from textdiff.profiles import profiled_params, profiled_raw

RUNS = Path("runs")
# what a run writes: the workspace keeps its own (the checkout's are the default run's)
OUTPUTS = ("data/", "models/", "samples/", "metrics/", "summary/", "spaces/", "classifiers/", "judge/",
           "reports/report.md", "reports/plots/",
           "checkpoints/", "logs/", "dvc.lock", "params.yaml")
SYNCED = ".synced"  # in a workspace: the source files its last sync copied
HEADER = ("# Written by `make repro PROFILE={name}` (pipelines/profile.py): params.yaml of {root} with\n"
          "# profiles/{name}.yaml applied. Edit those two, not this file: the next run rewrites it.\n")


def source_files(root: Path) -> list[str]:
    """Tracked and new (not ignored) files of the checkout that are code or inputs, not run outputs (the output
    folders' .gitignore files are kept: DVC lists its outputs there)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=root,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    return [f for f in listed if (not f.startswith(OUTPUTS) or f.endswith("/.gitignore")) and (root / f).is_file()]


def sync(root: Path, dest: Path) -> int:
    """Copy the checkout's source files into ``dest`` where they differ, and delete the ones an earlier sync
    copied that the checkout no longer has (a removed module must not stay importable there); the number copied.
    ``dest/.synced`` lists what the last sync copied."""
    names = source_files(root)
    manifest = dest / SYNCED
    before = set(manifest.read_text().splitlines()) if manifest.exists() else set()
    for gone in sorted(before - set(names)):
        (dest / gone).unlink(missing_ok=True)
    copied = 0
    for name in names:
        src, out = root / name, dest / name
        if out.is_file() and filecmp.cmp(src, out, shallow=False):
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, out)
        copied += 1
    dest.mkdir(parents=True, exist_ok=True)
    manifest.write_text("\n".join(names) + "\n")
    return copied


def profiled_text(root: Path, name: str) -> str:
    """The workspace's params.yaml: the checkout's with the profile applied, validated (a bad overlay fails
    here, naming the profile, before anything is written)."""
    base = read_yaml(root / "params.yaml")
    if not isinstance(base, dict):
        raise ParamsError(f"{root / 'params.yaml'}: expected a mapping of params")
    profiled_params(base, name, root)
    return HEADER.format(name=name, root=root) + yaml.safe_dump(profiled_raw(base, name, root), sort_keys=False)


def git(dest: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=dest, check=True, capture_output=True, text=True)


def prepare(root: Path, name: str) -> Path:
    """``runs/NAME`` ready to run: source synced, params written, .venv linked, a git repository."""
    params_text = profiled_text(root, name)
    dest = root / RUNS / name
    fresh = not (dest / ".git").exists()
    dest.mkdir(parents=True, exist_ok=True)
    copied = sync(root, dest)
    if not (dest / "params.yaml").exists() or (dest / "params.yaml").read_text() != params_text:
        (dest / "params.yaml").write_text(params_text)
    venv = root / ".venv"
    if venv.exists() and not (dest / ".venv").exists():
        (dest / ".venv").symlink_to(venv.resolve(), target_is_directory=True)
    if fresh:
        git(dest, "init", "-q")
        git(dest, "config", "user.email", "textdiff@localhost")
        git(dest, "config", "user.name", "textdiff profile run")
        git(dest, "add", "-A")
        git(dest, "commit", "-qm", f"profile {name}")  # DVC's experiments need a commit
    print(f"runs/{name}: {copied} source files updated; params.yaml = params.yaml + profiles/{name}.yaml", flush=True)
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="a profile in profiles/ (its file name without .yaml)")
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--prepare-only", action="store_true", help="write runs/NAME and stop")
    args = parser.parse_args(argv)
    root = Path.cwd()
    try:
        dest = prepare(root, args.name)
    except ParamsError as err:
        print(f"make repro PROFILE={args.name}: {err}", file=sys.stderr)
        return 2
    if args.prepare_only:
        return 0
    python = dest / ".venv" / "bin" / "python"
    cmd = [str(python if python.exists() else sys.executable), "-m", "pipelines.parallel"]
    if args.jobs:
        cmd += ["--jobs", str(args.jobs)]
    code = subprocess.run(cmd, cwd=dest).returncode
    if code == 0:
        print(f"profile {args.name}: report at {RUNS / args.name / 'reports' / 'report.md'}")
    return code


if __name__ == "__main__":
    sys.exit(main())
