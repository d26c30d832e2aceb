"""Every run in ablations.yaml is a valid params file once its overrides are applied to params.yaml (a key the
row's section does not write is added, as ``dvc exp run -S ++key=value`` does; the schema rejects a misspelt one)."""

import copy
from pathlib import Path

import pytest
import yaml

from pipelines.ablate import load_groups
from textdiff.config import ParamsError, parse_params
from tests.reference_rows import shipped_raw

ROOT = Path(__file__).resolve().parents[1]


def apply(raw: dict, override: str) -> dict:
    key, value = override.split("=", 1)
    *parents, leaf = key.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = yaml.safe_load(value)
    return raw


def all_runs():
    return [(g, r, o) for g, group in load_groups(ROOT / "ablations.yaml").items() for r, o in group["runs"].items()]


@pytest.mark.parametrize("group,run,overrides", all_runs(), ids=[f"{g}-{r}" for g, r, _ in all_runs()])
def test_every_ablation_run_is_valid_params(group, run, overrides):
    raw = shipped_raw()
    for override in overrides:
        apply(raw, override)
    parse_params(raw, f"ablations.yaml:{group}.{run}")


def test_the_check_can_fail():
    raw = shipped_raw()
    with pytest.raises(ParamsError, match="rows.mdlm.trian"):
        parse_params(apply(copy.deepcopy(raw), "rows.mdlm.trian.ema_decay=0.9"))
    with pytest.raises(ParamsError, match="emadecay"):
        parse_params(apply(copy.deepcopy(raw), "rows.mdlm.train.emadecay=0.9"))
    with pytest.raises(ParamsError, match="ema_decay"):
        parse_params(apply(copy.deepcopy(raw), "rows.mdlm.train.ema_decay=1.5"))
    with pytest.raises(ParamsError, match="rows.mdlm_typo"):  # a misspelt row becomes a row without a family
        parse_params(apply(copy.deepcopy(raw), "rows.mdlm_typo.train.steps=5"))


def test_overrides_become_set_or_add():
    from pipelines.ablate import set_or_add

    assert set_or_add("rows.mdlm.train.lr=0.002") == "++rows.mdlm.train.lr=0.002"
    assert set_or_add("+rows.x=1") == "+rows.x=1"


def test_a_group_of_several_rows_is_collected_per_row(tmp_path):
    from pipelines.ablate import per_row

    groups = load_groups(ROOT / "ablations.yaml")
    seeds = groups["training_seeds"]
    assert seeds["seeds"] is True and {"ar", "sedd_absorb", "sedd_uniform", "d3pm_absorb"} <= set(seeds["rows"])
    expanded = per_row({"training_seeds": seeds, "one": {"row": "mdlm", "runs": {"r": ["seed=1"]}}})
    assert set(expanded) == {f"training_seeds/{m}" for m in seeds["rows"]} | {"one"}
    assert expanded["training_seeds/ar"]["row"] == "ar" and expanded["training_seeds/ar"]["runs"] == seeds["runs"]
    bad = tmp_path / "ablations.yaml"
    bad.write_text("g:\n  rows: ar\n  runs: {r: [seed=1]}\n")
    with pytest.raises(ValueError, match="g.rows must be a list of row names"):
        load_groups(bad)
    bad.write_text("g:\n  runs: {r: [seed=1]}\n")
    with pytest.raises(ValueError, match="group 'g' needs 'row'"):
        load_groups(bad)


def test_the_old_spelling_of_a_groups_row_is_read_with_a_deprecation_message(tmp_path, capsys):
    old = tmp_path / "ablations.yaml"
    old.write_text("g:\n  model: ar\n  runs: {r: [seed=1]}\nh:\n  models: [ar, mdlm]\n  runs: {r: [seed=1]}\n")
    groups = load_groups(old)
    assert groups["g"]["row"] == "ar" and groups["h"]["rows"] == ["ar", "mdlm"] and "model" not in groups["g"]
    err = capsys.readouterr().err
    assert "g.model is deprecated, write g.row" in err and "h.models is deprecated, write h.rows" in err
    old.write_text("g:\n  model: ar\n  row: mdlm\n  runs: {r: [seed=1]}\n")
    with pytest.raises(ValueError, match="names both 'model' and 'row'"):
        load_groups(old)
