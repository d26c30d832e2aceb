"""Each stage's code is its import closure (stages/code.py): stage code writes one digest file per stage, and
that file is every other stage's only code dep in dvc.yaml."""

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import yaml

from stages import code
from stages.code import ROOT, digest_path, import_closure, stage_code, stage_modules, training_code
from textdiff.params import FAMILIES

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def names(paths) -> set[str]:
    return {str(p) for p in paths}


def test_every_stage_depends_on_its_code_digest_and_on_no_code_file():
    assert STAGES["code"]["deps"] == ["stages", "textdiff"] and STAGES["code"]["outs"] == ["data/code"]
    for name, stage in STAGES.items():
        if name == "code":
            continue
        body = stage.get("do", stage)
        module = re.search(r"-m stages\.(\w+)", body["cmd"]).group(1)
        deps = [d if isinstance(d, str) else next(iter(d)) for d in body["deps"]]
        family = "${item.family}" if "foreach" in stage else None
        assert str(digest_path(module, family)) in deps, name
        assert not [d for d in deps if d.split("/")[0] in ("stages", "textdiff")], name
    assert {re.search(r"-m stages\.(\w+)", s.get("do", s)["cmd"]).group(1) for s in STAGES.values()} - {"code"} \
        <= set(stage_modules())


def test_the_code_stage_writes_each_stages_files_and_their_hashes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code.main()
    written = sorted(p.relative_to(tmp_path) for p in (tmp_path / "data" / "code").rglob("*.json"))
    assert len(written) == len(stage_modules()) * (1 + len(FAMILIES))
    record = yaml.safe_load((tmp_path / digest_path("train", "mdlm")).read_text())
    assert list(record["files"]) == [str(f) for f in training_code("train", "mdlm")]
    loss = "textdiff/losses/discrete.py"
    assert record["files"][loss] == hashlib.sha256((ROOT / loss).read_bytes()).hexdigest()


def test_the_closure_follows_function_level_imports_data_files_and_the_family_loaded_by_name():
    sweep = names(stage_code("stages.steps_sweep", "mdlm"))
    assert "textdiff/persist.py" in sweep  # imported inside sweep_row only
    assert "textdiff/families/mdlm.py" in sweep and "textdiff/families/sedd.py" not in sweep  # get_family(row's)
    assert "textdiff/params/mdlm.py" in sweep  # the row's schema, which StageParams.row imports by name
    assert "textdiff/report/claims.yaml" in names(stage_code("stages.report"))  # read beside verdict.py
    assert "textdiff/families/__init__.py" in names(import_closure("textdiff.families.mdlm"))  # its package
    assert "textdiff/api.py" not in names(stage_code("stages.train", "mdlm"))  # textdiff.load: on access only


def test_stages_reading_their_row_do_not_depend_on_other_sections_schemas():
    """The training stages read their row and the run's settings only, so an edit to the schema of the report,
    the orchestration, the tasks or the whole params (textdiff/config.py) retrains nothing."""
    others = {"textdiff/config.py", "textdiff/params/report.py", "textdiff/params/orchestration.py",
              "textdiff/params/tasks.py", "stages/all_params.py"}
    for stage, family in [("train", "mdlm"), ("train", "latent"), ("autoencoder", "latent"), ("decoder", "encoder"),
                          ("judge", None), ("sample", "sedd"), ("space", "latent")]:
        assert not names(training_code(stage, family)) & others, stage
    assert "textdiff/params/report.py" in names(stage_code("stages.report"))  # the check can fail


def test_the_schema_imports_no_torch():
    probe = "import sys, textdiff.config, textdiff.params.reading; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_show_prints_a_stages_files():
    out = subprocess.run([sys.executable, "-m", "stages.code", "--show", "sample", "sedd"], capture_output=True,
                         text=True, check=True, cwd=ROOT)
    assert Path("textdiff/families/sedd.py") in [Path(line) for line in out.stdout.splitlines()]
