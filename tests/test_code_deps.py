"""One table of each training stage's code (stages/code.py): dvc.yaml's deps and the checkpoint fingerprint."""

from pathlib import Path

import yaml

from stages.code import TRAINING_CODE

ROOT = Path(__file__).resolve().parents[1]


def code_deps(stage: dict) -> set[str]:
    body = stage.get("do", stage)
    return {d for d in body["deps"] if d.startswith(("stages/", "textdiff/"))}


def test_dvc_yaml_lists_exactly_the_code_the_training_stages_fingerprint():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, code in TRAINING_CODE.items():
        expected = {c.replace("{family}", "${item.family}") for c in code}
        assert code_deps(stages[name]) == expected, name
        assert all((ROOT / c.replace("{family}", "mdlm")).exists() for c in code), name


def test_the_train_fingerprint_covers_the_losses_the_data_code_and_the_params_schema():
    for needed in ("textdiff/losses", "textdiff/data", "textdiff/config.py", "stages/train.py"):
        assert needed in TRAINING_CODE["train"]
