"""A real `dvc repro` of the tiny params profile in a temp copy of the repository."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", "DVC_NO_ANALYTICS": "1"}
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """Tracked and new (not ignored) files of the repo, tiny params, a git commit."""
    dest = tmp_path_factory.mktemp("repo")
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    skip = ("data/", "models/", "samples/", "metrics/", "reports/report.md", "reports/plots/", "checkpoints/", "dvc.lock")
    for f in files:
        if not f.startswith(skip) and (ROOT / f).is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dest / f)
    shutil.copy(ROOT / "profiles" / "tiny.yaml", dest / "params.yaml")
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "ci@example.com"],
                ["git", "config", "user.name", "ci"], ["git", "add", "-A"], ["git", "commit", "-qm", "tiny"]):
        run(cmd, dest)
    return dest


@pytest.fixture(scope="module")
def reproduced(repo) -> subprocess.CompletedProcess:
    return run(["dvc", "repro"], repo)


def test_repro_runs_every_stage_and_writes_the_report(repo, reproduced):
    for stage in ("prepare", "tokenizer", "train@ar", "sample@ar", "likelihood@ar", "evaluate@ar",
                  "train@d3pm_absorb", "likelihood@d3pm_absorb", "evaluate@sedd_uniform",
                  "steps_sweep@mdlm", "steps_sweep@sedd_uniform", "evaluate_reference", "report"):
        assert f"Running stage '{stage}'" in reproduced.stdout
    report = (repo / "reports" / "report.md").read_text()
    assert "| ar |" in report and "| real text (held-out) |" in report
    assert "## Held-out likelihood" in report and "| sedd_uniform | ≤ " in report
    sweep = json.loads((repo / "metrics" / "sweep" / "sedd_uniform.json").read_text())
    assert [pt["steps"] for pt in sweep["points"]] == [2, 8]
    assert (repo / "reports" / "plots" / "steps.png").stat().st_size > 1000
    assert (repo / "reports" / "plots" / "quality.png").stat().st_size > 1000
    assert (repo / "models" / "ar" / "model.safetensors").exists()
    assert '"ar"' in (repo / "models" / "ar" / "params.json").read_text()  # resolved params recorded
    metrics = run(["dvc", "metrics", "show", "--json"], repo).stdout
    assert "gen_ppl" in metrics and "heldout_ppl" in metrics


def test_second_repro_has_nothing_to_do(repo, reproduced):
    out = run(["dvc", "repro"], repo)
    assert "Running stage" not in out.stdout
    assert "up to date" in out.stdout


def test_exp_run_on_a_sample_param_reruns_only_what_depends_on_it(repo, reproduced):
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "lock"], repo)
    out = run(["dvc", "exp", "run", "-S", "ar.sample.top_p=0.9"], repo)
    ran = {line.split("'")[1] for line in out.stdout.splitlines() if line.startswith("Running stage")}
    assert ran == {"sample@ar", "evaluate@ar", "report"}, out.stdout


def test_bad_params_fail_with_the_key_and_keep_outputs(repo, reproduced):
    weights = repo / "models" / "ar" / "model.safetensors"
    before = hashlib.sha256(weights.read_bytes()).hexdigest()
    params = repo / "params.yaml"
    original = params.read_text()
    try:
        params.write_text(original.replace("steps: 30", "steps: -3"))
        out = run([sys.executable, "-m", "stages.train", "ar"], repo, check=False)
    finally:
        params.write_text(original)
    assert out.returncode == 2
    assert "ar.train.steps" in out.stderr and "greater than or equal to 1" in out.stderr
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == before


def test_ablation_sweep_collects_experiments_into_the_report(repo, reproduced):
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "before ablation", "--allow-empty"], repo)
    (repo / "tiny_ablations.yaml").write_text(
        "steps:\n  description: reverse steps\n  model: embedding\n  runs:\n"
        "    t-steps-2: [embedding.sample.steps=2]\n    t-steps-6: [embedding.sample.steps=6]\n")
    run([sys.executable, "-m", "pipelines.ablate", "--file", "tiny_ablations.yaml"], repo)
    groups = json.loads((repo / "reports" / "ablations.json").read_text())
    rows = {r["name"]: r for r in groups["steps"]["rows"]}
    assert set(rows) == {"baseline (params.yaml)", "t-steps-2", "t-steps-6"}
    assert rows["t-steps-2"]["gen_ppl"] is not None and rows["t-steps-6"]["gen_ppl"] is not None
    assert rows["t-steps-2"]["gen_ppl"] != rows["t-steps-6"]["gen_ppl"]
    run(["dvc", "repro", "report"], repo)
    report = (repo / "reports" / "report.md").read_text()
    assert "### steps (embedding)" in report and "`embedding.sample.steps=2`" in report
