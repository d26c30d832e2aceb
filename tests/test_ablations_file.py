"""Every run in ablations.yaml is a valid params file once its overrides are applied to params.yaml (a new leaf
key is allowed, as ``dvc exp run -S`` adds it; the schema rejects a misspelt one)."""

import copy
from pathlib import Path

import pytest
import yaml

from pipelines.ablate import load_groups
from textdiff.config import ParamsError, parse_params

ROOT = Path(__file__).resolve().parents[1]


def apply(raw: dict, override: str) -> dict:
    key, value = override.split("=", 1)
    *parents, leaf = key.split(".")
    node = raw
    for part in parents:
        if part not in node:
            raise KeyError(f"{override}: no {part!r} in params.yaml")
        node = node[part]
    node[leaf] = yaml.safe_load(value)
    return raw


def all_runs():
    return [(g, r, o) for g, group in load_groups(ROOT / "ablations.yaml").items() for r, o in group["runs"].items()]


@pytest.mark.parametrize("group,run,overrides", all_runs(), ids=[f"{g}-{r}" for g, r, _ in all_runs()])
def test_every_ablation_run_is_valid_params(group, run, overrides):
    raw = copy.deepcopy(yaml.safe_load((ROOT / "params.yaml").read_text()))
    for override in overrides:
        apply(raw, override)
    parse_params(raw, f"ablations.yaml:{group}.{run}")


def test_the_check_can_fail():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    with pytest.raises(KeyError):
        apply(copy.deepcopy(raw), "mdlm.trian.ema_decay=0.9")
    with pytest.raises(ParamsError, match="emadecay"):
        parse_params(apply(copy.deepcopy(raw), "mdlm.train.emadecay=0.9"))
    with pytest.raises(ParamsError, match="ema_decay"):
        parse_params(apply(copy.deepcopy(raw), "mdlm.train.ema_decay=1.5"))
