"""``make repro``'s stage runner: DVC's own steps for one stage, without a new DVC and Python process per stage.

``dvc repro --single-item STAGE`` starts DVC (about 1 s), which starts the stage's interpreter; importing
torch, transformers and the package takes 2–4 s more. In the tiny profile that start-up was most of every
stage's time (a stage with 0.0 s of work took 3–10 s). Here one DVC ``Repo`` stays open in the runner, and a
stage whose command is ``bin/py -m MODULE ARGS`` runs in a child forked from a forkserver that imported the
stage modules (and with them torch and transformers) once.

Around the command the runner takes the steps ``dvc repro`` takes for one stage, with DVC's own ``Stage``
methods, under DVC's repository lock: skip the stage if it has not changed; remove its outputs (persisted
ones stay); restore it from DVC's run cache if that holds this exact run; else run the command with
``DVC_ROOT`` and ``DVC_STAGE`` set, then save its deps and outputs (and the run cache), commit the outputs to
DVC's cache and write its ``dvc.lock`` entry. So ``dvc.lock`` is what ``dvc repro`` would have written: the
pipeline test checks that ``dvc repro`` finds nothing to do afterwards.

Two costs of DVC's own are paid once instead of per stage: reading the stage definitions (0.8 s: the stages
are collected once, at the start) and rewriting ``dvc.lock`` (a round trip through ruamel.yaml, 1.4 s for the
11,000 lines of a full run's lock file): finished stages are written together, at most ``RECORD_EVERY_S``
apart and always at the end, failed or not. A run killed between two writes loses little: a stage with
cached outputs is already in DVC's run cache, from which the next run restores it (a stage with uncached or
persisted outputs, such as the report, runs again). As ``dvc repro`` does, the runner waits for DVC's lock
when another DVC process holds it, and stages ``dvc.lock`` and the ``.gitignore`` files it writes in git
when ``core.autostage`` is on.

A stage goes through ``dvc repro --single-item`` as before (``cold``) when its command is anything else, when
it is frozen or has a working folder of its own, when the stages must use another interpreter
(``TEXTDIFF_PYTHON`` naming another environment), or when the forkserver cannot start a child.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shlex
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from pipelines.schedule import PROGRESS_LINE, StageFailed, run_stage

STAGE_MODULES = "stages"  # the package whose modules are imported once, in the forkserver
RECORD_EVERY_S = 30.0  # the longest a finished stage waits for its dvc.lock entry
PRELOAD_ENV = "TEXTDIFF_WARM_PRELOAD"  # the modules pipelines.warm_preload imports in the forkserver


def module_command(cmd: str) -> tuple[str, list[str]] | None:
    """``bin/py -m MODULE ARGS…`` as (MODULE, ARGS); None for any other command."""
    try:
        words = shlex.split(cmd)
    except ValueError:
        return None
    if len(words) >= 3 and words[0] in ("bin/py", "./bin/py") and words[1] == "-m":
        return words[2], words[3:]
    return None


def stage_modules(repo_dir: Path) -> list[str]:
    """Every stage module, so that the forkserver imports what the stages import (torch, transformers, …)."""
    return sorted(f"{STAGE_MODULES}.{p.stem}" for p in (repo_dir / STAGE_MODULES).glob("*.py") if p.stem != "__init__")


def same_environment(python: str | None) -> bool:
    """Whether ``python`` (TEXTDIFF_PYTHON, the stages' interpreter) is this process's environment: the same
    path, or an interpreter of the same venv (paths compared as written: a venv's python links to its base)."""
    if not python:
        return True
    path = Path(os.path.abspath(python))
    return path == Path(os.path.abspath(sys.executable)) or path.parent.parent == Path(sys.prefix)


def run_module(module: str, args: list[str], repo_dir: str, env: dict[str, str], threads: int | None,
               log_path: str) -> None:
    """In the forked child: the stage's output to ``log_path`` (both streams, C-level writes included), its
    environment, its share of the cores, then ``python -m MODULE ARGS`` in ``repo_dir``; the exit status is
    the stage's."""
    import runpy
    import warnings

    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.chdir(repo_dir)
    os.environ.update(env)
    use_repo_code(Path(repo_dir))
    if threads:
        import torch

        torch.set_num_threads(threads)
    sys.argv = [module, *args]
    warnings.filterwarnings("ignore", message=".*found in sys.modules after import of package", category=RuntimeWarning)
    runpy.run_module(module, run_name="__main__", alter_sys=True)  # the preloaded module, run as __main__


def use_repo_code(repo_dir: Path) -> None:
    """``python -m`` in ``repo_dir`` imports the packages that folder holds from it: drop any the forkserver
    imported from elsewhere (a runner started in another folder than ``--repo``), so they load from here."""
    root = repo_dir.resolve()
    sys.path.insert(0, str(root))
    for name, module in list(sys.modules.items()):
        top = name.partition(".")[0]
        origin = getattr(module, "__file__", None)
        if origin and (root / top / "__init__.py").exists() and not Path(origin).resolve().is_relative_to(root / top):
            del sys.modules[name]


def start_forkserver(context, modules: list[str], threads: int | None) -> None:
    """Start the forkserver, which imports ``modules`` (pipelines.warm_preload: one that fails to import is
    skipped, not fatal), with OMP_NUM_THREADS at the stages' share (torch sizes its OpenMP pool when it is
    imported) and CUDA left uninitialised there (a child forked after CUDA starts cannot use it). This
    process's own environment is left as it was. A forkserver is one per process: the first runner's
    modules and threads stay (each child sets its own thread count, and imports the stage code of its
    repository; see use_repo_code)."""
    from multiprocessing import forkserver

    settings = {"OMP_NUM_THREADS": str(threads) if threads else None, PRELOAD_ENV: ",".join(modules),
                "PYTORCH_NVML_BASED_CUDA_CHECK": "1"}
    before = {key: os.environ.get(key) for key in settings}
    for key, value in settings.items():
        if value is not None:
            os.environ[key] = value
    try:
        context.set_forkserver_preload(["pipelines.warm_preload"])
        forkserver.ensure_running()
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class WarmStages:
    """Runs stages of one repository, each in a forked child, recording them in ``dvc.lock`` from one open
    ``Repo``. Threads may call ``run`` at once: DVC's part is serialised, the commands run side by side."""

    def __init__(self, repo_dir: Path, threads: int | None, on_progress: Callable[[str, str], None] | None = None):
        """``on_progress(stage, line)`` receives each progress line (textdiff.progress) a stage writes while it
        runs, so a user watching ``make repro`` sees a long stage move."""
        from dvc.repo import Repo

        self.repo_dir, self.threads, self.on_progress = repo_dir, threads, on_progress
        self.repo = Repo(str(repo_dir), _wait_for_lock=True)  # as `dvc --wait-for-lock`
        self.dvc_turn = threading.Lock()  # one thread at a time in DVC's repository
        self.process_turn = threading.Lock()  # one thread at a time starting or reaping a child (run_child)
        with self.turn():
            self.stages = {stage.name: stage for stage in self.repo.index.stages}  # as pipelines.schedule.plan names them
        self.unrecorded: list = []  # finished stages whose dvc.lock entries are not written yet
        self.recorded_at = time.monotonic()
        self.context = multiprocessing.get_context("forkserver")
        start_forkserver(self.context, stage_modules(repo_dir), threads)
        self.own_interpreter = same_environment(os.environ.get("TEXTDIFF_PYTHON"))

    @contextlib.contextmanager
    def turn(self):
        """One thread at a time in DVC's repository, under its lock, from its root folder (DVC resolves stage
        paths against the working folder; nothing else in the runner depends on it)."""
        from dvc.repo import lock_repo

        with self.dvc_turn:
            before = os.getcwd()
            os.chdir(self.repo_dir)
            try:
                with lock_repo(self.repo), self.repo.scm_context(quiet=True):  # autostage, as `dvc repro`
                    yield
            finally:
                os.chdir(before)

    def close(self) -> None:
        """Write the dvc.lock entries still due, then let go of the repository."""
        with self.turn():
            self.record()
        self.repo.close()

    def record(self) -> None:
        """The dvc.lock entries of the finished stages, in one rewrite of the file (caller holds DVC's lock)."""
        by_file: dict = {}
        for stage in self.unrecorded:
            by_file.setdefault(stage.dvcfile.path, []).append(stage)
        for stages in by_file.values():
            stages[0].dvcfile.dump_stages(stages, update_pipeline=False)
        self.unrecorded = []
        self.recorded_at = time.monotonic()

    def run(self, name: str) -> tuple[str, str]:
        """('ran' | 'skipped' (unchanged) | 'restored' (from DVC's run cache), the stage's output); raises
        StageFailed with its last lines."""
        stage = self.stages[name]
        command = module_command(stage.cmd) if isinstance(stage.cmd, str) else None
        if command is None or not self.own_interpreter or stage.frozen or \
                Path(stage.wdir).resolve() != self.repo_dir.resolve():
            return self.cold(name)
        try:
            with self.turn():
                if not stage.changed():
                    return "skipped", ""
                stage.remove_outs(ignore_remove=False, force=False)
                outcome = self.restored_or_ready(stage)
                env = {"DVC_ROOT": str(self.repo_dir), "DVC_STAGE": stage.addressing}
            output = self.execute(name, env, *command) if outcome == "ran" else ""
            with self.turn():
                uncached = any(not out.use_cache for out in stage.outs if not (out.is_metric or out.is_plot))
                stage.save(run_cache=not uncached)
                stage.commit()
                self.unrecorded.append(stage)
                if time.monotonic() - self.recorded_at >= RECORD_EVERY_S:
                    self.record()
        except ForkserverGone:
            return self.cold(name)
        except StageFailed:
            raise
        except Exception as err:  # DVC's own errors (a declared output the command did not write, …)
            raise StageFailed(f"stage {name} failed: {type(err).__name__}: {err}") from err
        return outcome, output

    def restored_or_ready(self, stage) -> str:
        """'restored' when DVC's run cache holds this exact run (outputs checked out), else 'ran' with the deps
        saved for the command to run (DVC's run_stage)."""
        from dvc.stage.cache import RunCacheNotFoundError

        try:
            self.repo.stage_cache.restore(stage)
            return "restored"
        except RunCacheNotFoundError:
            stage.save_deps()
            return "ran"

    def cold(self, name: str) -> tuple[str, str]:
        outcome, stdout, stderr = run_stage(name, self.repo_dir, self.threads)
        return outcome, stdout + stderr

    def execute(self, name: str, env: dict[str, str], module: str, args: list[str]) -> str:
        with tempfile.NamedTemporaryFile(prefix="stage-", suffix=".log") as log:
            with follow_progress(Path(log.name), lambda line: self.on_progress(name, line)
                                 if self.on_progress else None):
                exitcode = run_child(self.context, self.process_turn, run_module,
                                     (module, args, str(self.repo_dir), env, self.threads, log.name), name)
            output = Path(log.name).read_text(encoding="utf-8", errors="replace")
        if exitcode != 0:
            raise StageFailed(f"stage {name} failed (exit {exitcode}):\n"
                              + "\n".join(output.strip().splitlines()[-15:]), "", output)
        return output


@contextlib.contextmanager
def follow_progress(log: Path, emit: Callable[[str], None], every_s: float = 1.0):
    """While the block runs, pass each new progress line of ``log`` (``[label] done/total …elapsed``, as
    textdiff.progress writes them in logs) to ``emit``."""
    stop = threading.Event()

    def tail() -> None:
        offset, partial = 0, b""
        while True:
            finished = stop.wait(every_s)
            try:
                with open(log, "rb") as f:  # bytes: a character split across two reads is decoded whole
                    f.seek(offset)
                    chunk = f.read()
                    offset = f.tell()
            except OSError:
                chunk = b""
            lines = (partial + chunk).split(b"\n")
            partial = lines.pop()
            for raw in lines:
                line = raw.decode("utf-8", errors="replace")
                if PROGRESS_LINE.match(line):
                    emit(line)
            if finished:
                return

    thread = threading.Thread(target=tail, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def run_child(context, turn: threading.Lock, target, args: tuple, name: str | None = None) -> int:
    """Run ``target(*args)`` in a child of ``context``'s forkserver and return its exit code. Threads may call
    this at once, all with the same ``turn``: multiprocessing reads a child's exit code from a pipe, and
    ``Process.start`` in one thread polls the other threads' children (``_cleanup``), so two readers could
    race for the code and the loser would report 255. Starting and reaping take ``turn``; the wait for the
    child to end does not."""
    from multiprocessing.connection import wait

    child = context.Process(target=target, args=args, name=name)
    with turn:
        try:
            child.start()
        except (OSError, EOFError) as err:  # the forkserver died (a signal, memory): run it the slow way
            raise ForkserverGone(str(err)) from err
    wait([child.sentinel])
    with turn:
        child.join()
    return child.exitcode


class ForkserverGone(RuntimeError):
    """The forkserver could not start a child."""
