"""Params profiles as overlays on params.yaml.

A profile (``profiles/NAME.yaml``) states only what it changes. ``overlay`` applies it to a params
mapping: nested mappings merge key by key, any other value replaces the base's, and under ``rows`` a row
set to ``null`` is left out (elsewhere ``null`` is a value, e.g. ``budget.train_flops: null``). A row the
base has and the profile does not name is kept, with the profile's ``defaults`` merged under it as for
every row, so a row added to params.yaml runs under every profile.

``make repro PROFILE=NAME`` (``pipelines.profile``) runs the overlaid params in a workspace of its own
(``runs/NAME``); the user's params.yaml and the default run's outputs stay as they are.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from textdiff.config import Params, parse_params
from textdiff.params.base import ParamsError, read_yaml

PROFILES = Path("profiles")
DROPPED = None  # a row mapped to this in a profile's `rows` is left out


def overlay(base: dict[str, Any], changes: dict[str, Any], _path: tuple[str, ...] = ()) -> dict[str, Any]:
    """``base`` with ``changes`` applied (neither is modified)."""
    merged = copy.deepcopy(base)
    for key, value in changes.items():
        here = (*_path, key)
        if _path == ("rows",) and value is DROPPED:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = overlay(merged[key], value, here)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def profile_names(root: Path = Path(".")) -> list[str]:
    return sorted(p.stem for p in (root / PROFILES).glob("*.yaml"))


def read_profile(name: str, root: Path = Path(".")) -> dict[str, Any]:
    """The changes profile ``name`` states; a ParamsError naming the file, or the profiles there are."""
    path = root / PROFILES / f"{name}.yaml"
    if not path.exists():
        raise ParamsError(f"no profile {name!r} ({path} does not exist); profiles: {', '.join(profile_names(root))}")
    changes = read_yaml(path) or {}
    if not isinstance(changes, dict):
        raise ParamsError(f"{path}: a profile is a mapping of the params it changes")
    return changes


def profiled_raw(base_raw: dict[str, Any], name: str, root: Path = Path(".")) -> dict[str, Any]:
    """The raw params of profile ``name`` applied to ``base_raw`` (e.g. params.yaml's contents)."""
    return overlay(base_raw, read_profile(name, root))


def profiled_params(base_raw: dict[str, Any], name: str, root: Path = Path(".")) -> Params:
    """The validated params of profile ``name`` over ``base_raw``; errors name the profile."""
    return parse_params(profiled_raw(base_raw, name, root), f"params.yaml with profiles/{name}.yaml")


def restated(base: dict[str, Any], changes: dict[str, Any], _path: tuple[str, ...] = ()) -> list[str]:
    """Keys of ``changes`` whose value equals the base's already (a profile states only what it changes)."""
    found = []
    for key, value in changes.items():
        here = (*_path, key)
        if key not in base:
            continue
        if isinstance(value, dict) and isinstance(base[key], dict):
            found += restated(base[key], value, here)
        elif value == base[key]:
            found.append(".".join(here))
    return found
