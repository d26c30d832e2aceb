"""The params a test builds on: params.yaml as git has it (HEAD), never the user's working file, and the tiny
profile applied to it. A user's edits to params.yaml, or a profile run, cannot change what the tests check."""

import subprocess
from functools import lru_cache
from pathlib import Path

import yaml

from textdiff.config import parse_params
from textdiff.families import get_family
from textdiff.profiles import profiled_raw

ROOT = Path(__file__).resolve().parents[1]


@lru_cache(maxsize=1)
def shipped_text() -> str:
    """params.yaml at HEAD; the file itself only where the checkout is not a git repository (an unpacked
    archive)."""
    out = subprocess.run(["git", "show", "HEAD:params.yaml"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout if out.returncode == 0 else (ROOT / "params.yaml").read_text()


def shipped_raw() -> dict:
    """A fresh copy of the shipped params as a mapping (tests may change it)."""
    return yaml.safe_load(shipped_text())


def profile_raw(name: str = "tiny", **overrides) -> dict:
    """profiles/NAME.yaml applied to the shipped params, top-level keys then replaced by ``overrides``."""
    raw = profiled_raw(shipped_raw(), name, ROOT)
    raw.update(overrides)
    return raw


REPO_PARAMS = parse_params(shipped_raw(), "params.yaml (HEAD)")


def profile_params(name: str = "tiny", **overrides):
    return parse_params(profile_raw(name, **overrides), f"params.yaml (HEAD) with profiles/{name}.yaml")


def row_family(row: str):
    """The family module of a shipped row (``d3pm_absorb`` -> textdiff.families.d3pm)."""
    return get_family(REPO_PARAMS.row(row).family)
