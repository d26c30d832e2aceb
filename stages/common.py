"""What every stage shares: params loading, recording, paths and clean error exits."""

from __future__ import annotations

import functools
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Callable

from textdiff.errors import InputError
from textdiff.io import write_json
from textdiff.params.base import Section
from textdiff.params.reading import StageParams

PARAMS_FILE = Path("params.yaml")
PREPARED = Path("data/prepared")
TOKENIZER = Path("data/tokenizer")
MODELS = Path("models")
SPACES = Path("spaces")  # spaces/<row>/data (the space stage) and spaces/<row>/decoder (a decoder stage)
CHECKPOINTS = Path("checkpoints")  # checkpoints/<row>/<part>: a row's parts in its own folder, never beside another row's
SAMPLES = Path("samples")
FEATURES = Path("data/features")  # the features stage's MiniLM encodings (textdiff.spaces.minilm.cached_features)
JUDGE_LM = Path("judge")  # the judge stage's LM that scores every row's samples (textdiff.eval.judge.load_judge)
ATTRIBUTE_JUDGE = Path("classifiers/judge")  # the control_judge stage's independent attribute classifier
GUIDE_CLASSIFIER = Path("classifiers/guide")  # the guide_classifier stage's classifier that steers control@ROW
METRICS = Path("metrics")
REPORTS = Path("reports")


def stage_params(**sections: type[Section]) -> StageParams:
    """The parts of params.yaml a stage reads: the run's settings, its rows (``.row(name)``) and the sections
    named here, each checked by its own schema module (so the stage depends on those alone; stage validate
    has checked the whole file). Stages that read across rows use stages.all_params.params()."""
    return StageParams(PARAMS_FILE, **sections)


def row_checkpoints(row: str, part: str) -> Path:
    """Where one part (model, autoencoder, decoder) of a row keeps its training checkpoints. Row names cannot
    hold a slash, so no row's folder can be another row's part; the judge's folder is named after a reserved
    row name (textdiff/config.py)."""
    return CHECKPOINTS / row / part


def record_params(path: Path, resolved: dict) -> None:
    """Write the params a stage ran with next to its outputs."""
    write_json(path, resolved)


def dump(section) -> dict:
    return section.model_dump(mode="json")


def file_digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        for f in sorted(p.rglob("*")) if p.is_dir() else [p]:
            if f.is_file() and "__pycache__" not in f.parts:
                h.update(f.name.encode())
                h.update(f.read_bytes())
    return h.hexdigest()[:16]


def fingerprint(obj: dict, *paths: Path) -> str:
    return hashlib.sha256((json.dumps(obj, sort_keys=True) + file_digest(*paths)).encode()).hexdigest()[:16]


def git_commit() -> str:
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_group() -> str:
    """The wandb group of one pipeline run: $TEXTDIFF_RUN_GROUP (the Prefect flow sets its run id), else the
    commit and the prepared-data hash, which together name what a `dvc repro` computed."""
    import os

    if os.environ.get("TEXTDIFF_RUN_GROUP"):
        return os.environ["TEXTDIFF_RUN_GROUP"]
    stats = PREPARED / "stats.json"
    data = json.loads(stats.read_text()).get("data_sha256", "") if stats.exists() else ""
    return f"{git_commit()[:8]}-{data[:8] or 'nodata'}"


def tracking_config(p, row: str | None = None) -> dict:
    """What every wandb run of a stage carries: seed, device, the data params (as prepare recorded them) and
    hash, the row's params."""
    stats = PREPARED / "stats.json"
    prepared = PREPARED / "params.json"
    data = json.loads(prepared.read_text()).get("data") if prepared.exists() else None
    config = {"seed": p.seed, "device": p.device, "data": data, "git_commit": git_commit(),
              "data_sha256": json.loads(stats.read_text()).get("data_sha256") if stats.exists() else None}
    if row is not None:
        config[row] = dump(p.row(row))
    return config


def say(stage: str, message: str) -> None:
    print(f"[{stage}] {message}", flush=True)


def stage_log(stage: str) -> Callable[[str], None]:
    """``say`` bound to one stage: the ``log`` a library call takes."""
    return functools.partial(say, stage)


def stage_main(name: str) -> Callable:
    """Run a stage function: time it, and turn known input errors into one clear line and exit 2."""
    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def run(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                out = fn(*args, **kwargs)
            except (InputError, FileNotFoundError) as err:
                print(f"[{name}] error: {err}", file=sys.stderr)
                sys.exit(2)
            say(name, f"done in {time.perf_counter() - t0:.1f}s")
            return out
        return run
    return wrap
