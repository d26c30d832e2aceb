"""Profiles are overlays (textdiff/profiles.py) and `make repro PROFILE=…` runs them in a workspace of its own
(pipelines/profile.py), leaving the user's params.yaml and the default run's outputs alone."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from textdiff.config import ParamsError
from textdiff.profiles import overlay, profile_names, profiled_params, restated
from tests.reference_rows import REPO_PARAMS, ROOT, shipped_raw
from tests.repo_copy import run, tiny_repo


def test_overlay_merges_mappings_replaces_values_and_drops_rows_set_to_null():
    base = {"seed": 0, "budget": {"train_flops": 8e12}, "defaults": {"train": {"steps": 400, "lr": 1e-3}},
            "rows": {"ar": {"family": "ar", "train": {"lr": 2e-3}}, "mdlm": {"family": "mdlm"}},
            "steps_sweep": {"steps": [8, 32, 128]}}
    changes = {"budget": {"train_flops": None}, "defaults": {"train": {"steps": 20}},
               "rows": {"mdlm": None, "ar": {"model": {"d_model": 32}}}, "steps_sweep": {"steps": [2]}}
    merged = overlay(base, changes)
    assert merged == {"seed": 0, "budget": {"train_flops": None}, "defaults": {"train": {"steps": 20, "lr": 1e-3}},
                      "rows": {"ar": {"family": "ar", "train": {"lr": 2e-3}, "model": {"d_model": 32}}},
                      "steps_sweep": {"steps": [2]}}
    assert base["rows"]["mdlm"] == {"family": "mdlm"} and base["defaults"]["train"]["steps"] == 400  # untouched
    assert merged["rows"]["ar"] is not base["rows"]["ar"]


@pytest.mark.parametrize("name", profile_names(ROOT))
def test_every_profile_is_valid_over_the_shipped_params_and_states_only_what_it_changes(name):
    changes = yaml.safe_load((ROOT / "profiles" / f"{name}.yaml").read_text())
    assert restated(shipped_raw(), changes) == []
    p = profiled_params(shipped_raw(), name, ROOT)
    assert p != REPO_PARAMS


def test_a_row_added_to_params_yaml_runs_under_every_profile_at_its_defaults():
    base = shipped_raw()
    base["rows"]["mdlm_wide"] = {"family": "mdlm", "model": {"n_heads": 2}}
    tiny = profiled_params(base, "tiny", ROOT)
    gpu = profiled_params(base, "gpu", ROOT)
    assert tiny.row("mdlm_wide").model.d_model == tiny.row("mdlm").model.d_model == 32
    assert gpu.row("mdlm_wide").model.d_model == 768 and gpu.row("mdlm_wide").train.steps == 20000
    assert "d3pm_absorb" not in tiny.rows and "d3pm_absorb" in gpu.rows  # tiny leaves rows out by name


def test_restated_finds_values_a_profile_repeats():
    assert restated({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"b": 1, "c": 5}, "e": 4}) == ["a.b"]


def test_an_unknown_profile_or_a_bad_value_is_an_error_naming_it():
    with pytest.raises(ParamsError, match=r"no profile 'huge'.*profiles: gpu, tiny"):
        profiled_params(shipped_raw(), "huge", ROOT)


def test_make_repro_profile_writes_its_own_workspace_and_leaves_params_yaml_alone(tmp_path):
    """pipelines.profile --prepare-only in a copy of the repository: runs/tiny gets the code, the overlaid params
    and its own git repository, not the checkout's outputs; DVC in the checkout does not see its stages; a
    second call copies nothing, a later one drops a file the checkout lost; a bad profile stops before writing
    anything."""
    repo = tiny_repo(tmp_path / "repo")
    raw = shipped_raw()
    raw["rows"]["mdlm_wide"] = {"family": "mdlm"}  # the user's own row, uncommitted
    (repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    (repo / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")  # the default run's record
    before = (repo / "params.yaml").read_bytes()

    def prepare(name):
        return subprocess.run([sys.executable, "-m", "pipelines.profile", name, "--prepare-only"], cwd=repo,
                              capture_output=True, text=True)

    out = prepare("tiny")
    assert out.returncode == 0, out.stderr
    work = repo / "runs" / "tiny"
    assert (repo / "params.yaml").read_bytes() == before
    written = yaml.safe_load((work / "params.yaml").read_text())
    assert "mdlm_wide" in written["rows"] and "d3pm_absorb" not in written["rows"]
    assert written["defaults"]["model"]["d_model"] == 32
    assert (work / "dvc.yaml").read_bytes() == (repo / "dvc.yaml").read_bytes()
    assert (work / "spaces" / "ar" / ".gitignore").exists() and not (work / "dvc.lock").exists()
    assert (work / ".git").is_dir() and (work / ".venv" / "bin" / "python").exists()
    assert "0 source files updated" in prepare("tiny").stdout
    (repo / "stages" / "extra.py").write_text("X = 1\n")  # a new module, then removed from the checkout
    assert "1 source files updated" in prepare("tiny").stdout and (work / "stages" / "extra.py").exists()
    (repo / "stages" / "extra.py").unlink()
    prepare("tiny")
    assert not (work / "stages" / "extra.py").exists()

    stages = run(["dvc", "stage", "list", "--name-only"], repo).stdout.split()
    assert "train@ar" in stages and not any("runs" in s for s in stages)
    assert "train@mdlm_wide" in run(["dvc", "stage", "list", "--name-only"], work).stdout.split()

    bad = prepare("huge")
    assert bad.returncode == 2 and "no profile 'huge'" in bad.stderr and not (repo / "runs" / "huge").exists()
