"""Each stage's code deps are its import closure (stages/code.py, written into dvc.yaml by pipelines/code_deps.py)."""

import subprocess
import sys
from pathlib import Path

from pipelines.code_deps import DVC_YAML, compress, differences, rewrite
from stages.code import import_closure, stage_code, training_code


def names(paths) -> set[str]:
    return {str(p) for p in paths}


def test_every_stage_in_dvc_yaml_lists_exactly_the_code_it_runs():
    diff = differences(DVC_YAML.read_text())
    assert diff == {}, f"{diff}: run python -m pipelines.code_deps --write"


def test_a_dropped_or_stale_code_dep_is_found_and_written_back():
    text = DVC_YAML.read_text()
    dropped = text.replace("      - stages/prepare.py\n", "", 1)
    stale = text.replace("      - stages/prepare.py\n", "      - stages/prepare.py\n      - textdiff/report/verdict.py\n", 1)
    assert differences(dropped) == {"prepare": (["stages/prepare.py"], [])}
    assert differences(stale) == {"prepare": ([], ["textdiff/report/verdict.py"])}
    assert rewrite(dropped) == text and rewrite(stale) == text  # and the rest of the file (comments) unchanged


def test_the_closure_follows_function_level_imports_data_files_and_the_family_loaded_by_name():
    sweep = names(stage_code("stages.steps_sweep", "mdlm"))
    assert "textdiff/persist.py" in sweep  # imported inside sweep_row only
    assert "textdiff/families/mdlm.py" in sweep and "textdiff/families/ar.py" not in sweep  # get_family(row's)
    assert "textdiff/params/mdlm.py" in sweep  # the row's schema, which StageParams.row imports by name
    assert "textdiff/report/claims.yaml" in names(stage_code("stages.report"))  # read beside verdict.py
    assert "textdiff/families/__init__.py" in names(import_closure("textdiff.families.mdlm"))  # its package


def test_stages_reading_their_row_do_not_depend_on_other_sections_schemas():
    """The training stages read their row and the run's settings only, so an edit to the schema of the report,
    the orchestration, the tasks or the whole params (textdiff/config.py) retrains nothing."""
    others = {"textdiff/config.py", "textdiff/params/report.py", "textdiff/params/orchestration.py",
              "textdiff/params/tasks.py", "stages/all_params.py"}
    for stage, family in [("train", "mdlm"), ("train", "latent"), ("autoencoder", "latent"), ("decoder", "encoder"),
                          ("judge", None)]:
        assert not names(training_code(stage, family)) & others, stage
    assert "textdiff/params/report.py" in names(stage_code("stages.report"))  # the check can fail


def test_the_schema_imports_no_torch():
    code = "import sys, textdiff.config, textdiff.params.reading; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=DVC_YAML.parent)
    assert out.stdout.strip() == "False"


def test_a_package_every_module_of_which_runs_is_one_dep():
    nn = {p.relative_to(DVC_YAML.parent) for p in (DVC_YAML.parent / "textdiff" / "nn").glob("*.py")}
    assert compress(nn | {Path("stages/train.py")}) == ["stages/train.py", "textdiff/nn"]
    some = set(sorted(nn)[:-1])
    assert compress(some) == sorted(str(p) for p in some)
