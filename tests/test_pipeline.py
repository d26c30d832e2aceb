"""A real run of the tiny params profile in a temp copy of the repository: `make repro`'s runner
(pipelines.parallel: the DVC stages, two at once), then `dvc repro` and `dvc exp run` on its results."""

import copy
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.repo_copy import VENV, commit_all, run, tiny_repo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    return tiny_repo(tmp_path_factory.mktemp("repo"))


@pytest.fixture(scope="module")
def reproduced(repo) -> subprocess.CompletedProcess:
    """What `make repro` runs (the venv's interpreter, not on PATH), two stages at once."""
    return run([str(VENV / "bin" / "python"), "-m", "pipelines.parallel", "--jobs", "2"], repo)


def test_repro_runs_every_stage_and_writes_the_report(repo, reproduced):
    for stage in ("prepare", "tokenizer", "judge", "space@ar", "train@ar", "sample@ar", "likelihood@ar", "evaluate@ar",
                  "likelihood@sedd_uniform", "evaluate@sedd_uniform", "steps_sweep@sedd_uniform",
                  "space@encoder", "decoder@encoder", "train@encoder",
                  "sample@encoder", "evaluate@encoder", "evaluate_reference", "report", "autoencoder@ar",
                  "autoencoder@latent_planner", "space@latent_planner", "train@latent_planner",
                  "sample@latent_planner", "evaluate@latent_planner"):
        assert f"== {stage}: ran in" in reproduced.stdout
    times = json.loads((repo / "logs" / "repro_times.json").read_text())
    ran = {line.split(":")[0][3:] for line in reproduced.stdout.splitlines() if line.startswith("== ")}
    assert set(times["stages"]) == ran and times["jobs"] == 2
    assert all(0 <= t["start_s"] < t["end_s"] <= times["wall_s"] for t in times["stages"].values())
    resolved = yaml.safe_load((repo / "data" / "params" / "mdlm.yaml").read_text())  # defaults merged in
    assert (resolved["family"], resolved["model"]["d_model"], resolved["train"]["steps"]) == ("mdlm", 32, 20)
    for row in ("ar", "mdlm"):  # a family the tiny profile does not sweep only records why
        assert not json.loads((repo / "metrics" / "sweep" / f"{row}.json").read_text())["swept"]
    report = (repo / "reports" / "report.md").read_text()
    assert "| ar |" in report and "| real text (held-out) |" in report
    assert "## Held-out likelihood" in report and "| sedd_uniform | ≤ " in report
    assert "| encoder |" in report and "## Continuous spaces" in report
    assert "| decoder of |" in report and "| encoder | encodings | 240 |" in report
    space = json.loads((repo / "metrics" / "space" / "encoder.json").read_text())
    assert space["tokens"] > space["sentences"] * 5 and space["cache_bytes"] > space["tokens"] * 384 * 2
    assert (repo / "spaces" / "encoder" / "decoder" / "decoder.safetensors").exists()
    encoder_texts = [json.loads(line)["text"] for line in (repo / "samples" / "encoder.jsonl").read_text().splitlines()]
    assert len(encoder_texts) == 24 and all(t == t.lower() for t in encoder_texts)  # MiniLM's uncased WordPiece
    assert "## Latent diffusion" in report and "| latent_planner | planner | 4 × 16 |" in report
    assert "(λ = 0.5)" in report and "| spaces/latent_planner/data | 240 |" in report
    autoencoder = json.loads((repo / "metrics" / "autoencoder" / "latent_planner.json").read_text())
    assert autoencoder["held_out"]["sentences"] == 12 and len(autoencoder["interpolation"]) == 5
    assert autoencoder["held_out"]["kl_per_sentence"] > 0 and autoencoder["steps"] == 20
    assert json.loads((repo / "metrics" / "autoencoder" / "ar.json").read_text())["autoencoder"] is None
    latent_texts = (repo / "samples" / "latent_planner.jsonl").read_text().splitlines()
    assert len(latent_texts) == 24
    sweep = json.loads((repo / "metrics" / "sweep" / "sedd_uniform.json").read_text())
    assert [pt["steps"] for pt in sweep["points"]] == [2, 8]
    assert (repo / "reports" / "plots" / "steps.png").stat().st_size > 1000
    assert (repo / "reports" / "plots" / "quality.png").stat().st_size > 1000
    assert (repo / "models" / "ar" / "model.safetensors").exists()
    assert '"ar"' in (repo / "models" / "ar" / "params.json").read_text()  # resolved params recorded
    metrics = json.loads(run(["dvc", "metrics", "show", "--json"], repo).stdout)[""]["data"]
    assert set(metrics) == {f"summary/{f.name}" for f in (repo / "summary").glob("*.json")}  # only the summaries
    assert "gen_ppl" in metrics["summary/ar.json"]["data"] and "ppl" in metrics["summary/ar.json"]["data"]
    judge = json.loads((repo / "metrics" / "judge.json").read_text())
    assert judge["kind"] == "trained" and judge["heldout_ppl"] > 1 and f"**{judge['heldout_ppl']:.1f}**" in report
    assert report.index("## Verdict") < report.index("## Comparison") and "| claim | source | verdict |" in report
    summary = run(["dvc", "metrics", "show", *sorted(str(f.relative_to(repo)) for f in (repo / "summary").glob("*.json"))],
                  repo).stdout
    assert "summary/ar.json" in summary and "mauve_lo" in summary
    assert max(len(line) for line in summary.splitlines()) <= 80, summary


def test_infill_and_control_stages_fill_guide_and_report(repo, reproduced):
    for stage in ("infill@mdlm", "infill@ar", "infill@latent_planner", "guide_classifier", "control_judge",
                  "control@embedding", "control@mdlm", "control@sedd_uniform"):
        assert f"== {stage}: ran in" in reproduced.stdout
    infill = json.loads((repo / "metrics" / "infill" / "mdlm.json").read_text())
    assert infill["supported"] and infill["templates"] == 8 and infill["fills_per_template"] == 2
    assert 0.2 <= infill["blank_share"] <= 0.55 and infill["token_accuracy_ci"] is not None
    for record in (json.loads(line) for line in (repo / "samples" / "infill" / "mdlm.jsonl").read_text().splitlines()):
        blanks = {j for a, b in record["spans"] for j in range(a, b)}
        for fill in record["fills"]:  # the stage's own fills keep every known token
            assert [t for j, t in enumerate(fill["canvas"]) if j not in blanks] == \
                [t for j, t in enumerate(record["tokens"]) if j not in blanks]
    assert not json.loads((repo / "metrics" / "infill" / "latent_planner.json").read_text())["supported"]
    control = json.loads((repo / "metrics" / "control" / "mdlm.json").read_text())
    assert set(control["labels"]) == {"fresh", "rotten"} and control["labels"]["fresh"]["success_ci"] is not None
    assert 0.5 < json.loads((repo / "metrics" / "control_judge.json").read_text())["heldout_accuracy"] <= 1
    assert "score ratios" in json.loads((repo / "metrics" / "control" / "sedd_uniform.json").read_text())["reason"]
    report = (repo / "reports" / "report.md").read_text()
    assert "## Infilling" in report and "| mdlm |" in report.split("## Infilling")[1]
    assert "**latent_planner** cannot infill: its state is one latent" in report and "| ar † |" in report
    control_part = report.split("## Controllable generation")[1].split("## Ablations")[0]
    assert "| embedding | fresh |" in control_part and "**sedd_uniform** cannot be guided: its samplers" in control_part


def textdiff_command(*args: str, repo: Path, check: bool = True) -> subprocess.CompletedProcess:
    """The console script as README writes it (.venv/bin/textdiff), venv not activated."""
    return run([str(VENV / "bin" / "textdiff"), *args], repo, check=check)


def test_the_textdiff_command_prints_samples_fills_and_guided_texts(repo, reproduced):
    sampled = textdiff_command("sample", "mdlm", "-n", "3", repo=repo)
    assert len(sampled.stdout.splitlines()) == 3 and "done in" in sampled.stderr
    filled = textdiff_command("infill", "mdlm", "the film is ___ .", repo=repo).stdout.splitlines()
    assert len(filled) == 1 and filled[0].startswith("the film is") and filled[0].endswith(" .")
    guided = textdiff_command("control", "embedding", "--label", "fresh", "-n", "3", repo=repo)
    assert len(guided.stdout.splitlines()) == 3
    rows = textdiff_command("rows", repo=repo).stdout
    assert "mdlm" in rows and "latent_planner" in rows and "infill / control" in rows
    assert "usage: textdiff" in textdiff_command("--help", repo=repo).stdout


@pytest.mark.parametrize("args,message", [
    (["infill", "latent_planner", "the film is ___ ."], "latent_planner cannot infill: its state is one latent"),
    (["infill", "mdlm", "no blank at all"], "has no blank: mark each span to fill with ___"),
    (["infill", "mdlm", "a " * 40 + "___"], "mdlm's canvas holds 32"),
    (["control", "mdlm", "--label", "sweet"], "unknown label 'sweet'; the corpus's labels are ['fresh', 'rotten']"),
    (["control", "sedd_uniform", "--label", "fresh"], "sedd_uniform cannot guide: its samplers step on"),
    (["sample", "nothing"], "no trained row 'nothing'"),
])
def test_the_textdiff_command_names_what_is_wrong(repo, reproduced, args, message):
    out = textdiff_command(*args, repo=repo, check=False)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_three_lines_of_python_sample_infill_and_guide(repo, reproduced):
    script = ("import textdiff\n"
              "model = textdiff.load('models/mdlm')\n"
              "print(len(model.sample(3)), model.infill('the film is ___ .')[0])\n"
              "emb = textdiff.load('models/embedding')\n"
              "print(len(emb.guide('fresh', n=3)), emb.guide('fresh', n=2, strength=0) == emb.sample(2))\n"
              "print(model.likelihood(['the film is good .'])['heldout_ppl'] > 1)\n")
    out = run([sys.executable, "-c", script], repo).stdout.splitlines()
    assert out[0].startswith("3 the film is") and out[1] == "3 True" and out[2] == "True"


def test_make_repro_names_an_unknown_stage_and_runs_nothing(repo, reproduced):
    out = run([str(VENV / "bin" / "python"), "-m", "pipelines.parallel", "train@nosuchrow"], repo, check=False)
    assert out.returncode == 2 and "unknown stages ['train@nosuchrow']" in out.stderr


def test_second_repro_has_nothing_to_do(repo, reproduced):
    out = run(["dvc", "repro"], repo)
    assert "Running stage" not in out.stdout
    assert "up to date" in out.stdout


def test_dvc_metrics_show_reads_in_one_screen(repo, reproduced):
    """Only the rows' headline summaries are declared metrics: `dvc metrics show`, as a DVC user types it first,
    prints a table a terminal can hold (it printed 9,278 columns when every stage's metrics file was declared)."""
    out = run(["dvc", "metrics", "show"], repo)
    lines = out.stdout.splitlines()
    assert lines[0].split()[0] == "Path" and "mauve" in lines[0] and any(line.startswith("summary/ar.json") for line in lines)
    assert max(len(line) for line in lines) <= 120, lines[0]


def test_a_lost_or_edited_report_is_restored_from_dvcs_cache(repo, reproduced):
    report = repo / "reports" / "report.md"
    written = report.read_bytes()
    report.write_text("edited by hand\n")
    assert "report:" in run(["dvc", "status", "report"], repo).stdout
    run(["dvc", "checkout", "--force", "reports/report.md"], repo)
    assert report.read_bytes() == written
    report.unlink()
    run(["dvc", "checkout", "reports/report.md"], repo)
    assert report.read_bytes() == written
    assert "up to date" in run(["dvc", "status", "report"], repo).stdout


def test_exp_run_on_a_sample_param_reruns_only_what_depends_on_it(repo, reproduced):
    commit_all(repo, "lock")
    out = run(["dvc", "exp", "run", "-S", "++rows.ar.sample.top_p=0.9"], repo)
    ran = {line.split("'")[1] for line in out.stdout.splitlines() if line.startswith("Running stage")}
    # steps_sweep@ar only rewrites its one-line record (ar's family is not swept) but DVC cannot know that
    assert ran == {"validate", "sample@ar", "evaluate@ar", "infill@ar", "control@ar", "steps_sweep@ar", "report"}, \
        out.stdout


def test_dvc_knows_what_a_changed_decoder_space_or_autoencoder_invalidates(repo, reproduced):
    """A decoder change re-samples the encoder row without retraining it; a space change retrains it; an
    autoencoder change re-encodes its latents and retrains its latent row; none touches another row. What would
    run = the stages `dvc status` lists plus everything downstream of them in DVC's graph (the Prefect flow's plan)."""
    from pipelines.flow import plan

    params = repo / "params.yaml"
    original = params.read_text()

    def would_run(old: str, new: str) -> set[str]:
        assert old in original
        try:
            params.write_text(original.replace(old, new, 1))
            p = plan(repo, None)  # runs validate first: the rows' resolved params (data/params) then show the change
        finally:
            params.write_text(original)
        assert "validate" in p.changed
        changed = p.changed - {"validate"}
        return changed | {s for s, up in p.upstream.items() if up & changed}

    decoder_change = would_run("noise_t_max: 0.15", "noise_t_max: 0.1")
    # (steps_sweep@ROW and decoder@ROW exist for every row; where the family has none they rewrite a record)
    assert decoder_change == {"decoder@encoder", "sample@encoder", "evaluate@encoder", "steps_sweep@encoder", "report"}
    space_change = would_run("features: encodings", "features: embeddings")
    assert {"space@encoder", "decoder@encoder", "train@encoder", "sample@encoder"} <= space_change
    assert not any(s.endswith(("@ar", "@sedd_uniform", "@mdlm", "@latent_planner")) for s in space_change | decoder_change)
    autoencoder_change = would_run("kl_beta: 1.0e-05", "kl_beta: 0.001")
    assert autoencoder_change == {f"{stage}@latent_planner" for stage in
                                  ("autoencoder", "space", "decoder", "train", "sample", "likelihood", "evaluate",
                                   "infill", "control", "steps_sweep")} | {"report"}
    # a default reaches every row that does not write its own value (ar writes its steps; `defaults` is first)
    default_change = would_run("steps: 20", "steps: 21")
    rows = set(yaml.safe_load(original)["rows"])
    assert {s for s in default_change if s.startswith("train@")} == {f"train@{r}" for r in rows - {"ar"}}
    run(["dvc", "repro", "--single-item", "validate"], repo)  # data/params back to the restored params


def test_an_orchestration_or_report_schema_edit_retrains_nothing(repo, reproduced):
    """Params are split by owner (textdiff/params/): a training stage depends on its row's and the run's schema
    modules only, so DVC's status after an edit to the orchestration's or the report's schema (and the code
    stage's new digests) lists the stages that read the whole params (validate, evaluate, report) and no trained
    component."""
    for owner in ("orchestration", "report"):
        schema = repo / "textdiff" / "params" / f"{owner}.py"
        original = schema.read_text()
        try:
            schema.write_text(original + "\n# an edited schema module\n")
            run(["dvc", "repro", "--single-item", "code"], repo)  # the stages' code digests, as repro runs it first
            changed = set(json.loads(run(["dvc", "status", "--json"], repo).stdout or "{}"))
        finally:
            schema.write_text(original)
            run(["dvc", "repro", "--single-item", "code"], repo)
        assert {"validate", "report"} <= changed, owner
        trained = {s for s in changed if s.split("@")[0] in ("train", "autoencoder", "decoder", "judge", "space")}
        assert not trained, (owner, trained)


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


def test_a_bad_value_under_dvc_repro_stops_at_validate_before_any_output_is_deleted(repo, reproduced):
    """DVC deletes a stage's outputs before running it; the validate stage runs first and fails, so the
    train stage whose param is bad keeps its last good model."""
    weights = repo / "models" / "ar" / "model.safetensors"
    before = hashlib.sha256(weights.read_bytes()).hexdigest()
    params = repo / "params.yaml"
    original = params.read_text()
    try:
        params.write_text(original.replace("lr: 0.003", "lr: .inf", 1))
        out = run(["dvc", "repro"], repo, check=False)
    finally:
        params.write_text(original)
    assert out.returncode != 0
    assert "defaults.train.lr" in out.stderr + out.stdout and "Running stage 'train@ar'" not in out.stdout
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == before
    # validate's own output is persisted through the failure: with the params restored, nothing is out of date
    assert "validate" not in json.loads(run(["dvc", "status", "--json"], repo).stdout or "{}")


def test_a_forced_rerun_of_a_space_changes_nothing_downstream(repo, reproduced):
    """Outputs DVC hashes are byte-identical for identical inputs; timings go to metrics files only, which
    the report alone reads (it prints the encode times)."""
    for stage in ("space@encoder", "space@latent_planner"):
        run(["dvc", "repro", "-f", "--single-item", stage], repo)
    status = json.loads(run(["dvc", "status", "--json"], repo).stdout or "{}")
    assert set(status) <= {"report"}, status


def test_a_new_row_is_one_section_and_runs_alone(repo, reproduced):
    """Adding a row of an existing family is adding its section: dvc repro runs its stages and no other row's."""
    params = repo / "params.yaml"
    original = params.read_text()
    raw = yaml.safe_load(original)
    raw["rows"]["mdlm_wide"] = {"family": "mdlm", "model": {"d_model": 48}, "train": {"steps": 6}}
    try:
        params.write_text(yaml.safe_dump(raw, sort_keys=False))
        out = run(["dvc", "repro", "sample@mdlm_wide"], repo)
        ran = {line.split("'")[1] for line in out.stdout.splitlines() if line.startswith("Running stage")}
        assert ran == {"validate", *(f"{s}@mdlm_wide" for s in ("autoencoder", "space", "decoder", "train", "sample"))}, \
            out.stdout
        model = json.loads((repo / "models" / "mdlm_wide" / "model.json").read_text())
        assert (model["row"], model["family"], model["params"]["model"]["d_model"]) == ("mdlm_wide", "mdlm", 48)
        assert len((repo / "samples" / "mdlm_wide.jsonl").read_text().splitlines()) == 24  # the defaults' count
    finally:
        params.write_text(original)
        run(["dvc", "repro", "--single-item", "validate"], repo)


def test_a_changed_loss_function_restarts_training_from_step_zero(repo, reproduced):
    """The checkpoint fingerprint covers the code DVC re-runs the stage for (stages/code.py): after a change to
    the loss, train@mdlm starts again instead of resuming the old run's final checkpoint. Last in the module: it
    leaves mdlm's train metrics rewritten."""
    def train_mdlm() -> dict:
        run([str(repo / "bin" / "py"), "-m", "stages.train", "mdlm"], repo)
        return json.loads((repo / "metrics" / "train" / "mdlm.json").read_text())

    assert train_mdlm()["resumed_from_step"] > 0  # same code: the run's checkpoint is resumed
    loss = repo / "textdiff" / "losses" / "discrete.py"
    original = loss.read_text()
    try:
        loss.write_text(original + "\n# a changed loss module\n")
        assert train_mdlm()["resumed_from_step"] == 0
    finally:
        loss.write_text(original)
