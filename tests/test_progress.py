"""Progress a user can watch (textdiff.progress): lines in logs with the count, figures, elapsed time and an ETA,
streamed from a running stage by the warm runner, and stages done of total for `make repro` and the flow."""

import threading
import time

import pytest
import torch

from pipelines.schedule import Plan, StageProgress, stages_to_run
from pipelines.warm import follow_progress
from textdiff.progress import Progress, clock


def test_clock():
    assert (clock(12.4), clock(260), clock(3720)) == ("12s", "4m20s", "1h02m")


def test_the_eta_is_the_units_left_at_the_rate_since_the_first_update(monkeypatch):
    monkeypatch.setenv("TEXTDIFF_PROGRESS", "lines")
    p = Progress(10, "train", every_s=1e9, unit="steps")
    p.update(1)
    p.first_at, p.done = (100.0, 1), 5  # 4 steps in the 4 s after the first: 1 step/s, 5 left
    assert p.eta_s(now=104.0) == pytest.approx(5.0)
    p.figures = {"loss": 5.12345, "tokens_per_s": 3456.7}
    p.started = 40.0
    assert p.line(now=104.0) == "[train] 5/10 steps (50%) loss 5.123, tokens per s 3,457, 1m04s elapsed, ETA 5s"
    p.mode = "off"


def test_lines_mode_prints_every_few_seconds_and_at_the_end(monkeypatch, capsys):
    monkeypatch.setenv("TEXTDIFF_PROGRESS", "lines")
    with Progress(3, "sample", every_s=0.0, unit="batches") as p:
        for _ in range(3):
            p.update(1)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith("[sample] 1/3 batches (33%)") and "ETA" not in lines[-1]
    monkeypatch.setenv("TEXTDIFF_PROGRESS", "off")
    with Progress(3, "quiet", every_s=0.0) as p:
        p.update(3)
    assert capsys.readouterr().err == ""


def test_training_reports_step_loss_and_tokens_per_second(monkeypatch, capsys, small_tokenizer, review_texts):
    from textdiff.config import ARParams
    from textdiff.families import ar
    from textdiff.families.contract import RunContext

    monkeypatch.setenv("TEXTDIFF_PROGRESS", "lines")
    section = ARParams.model_validate({"family": "ar", "model": {"d_model": 16, "n_layers": 1, "n_heads": 2,
                                                                 "seq_len": 16},
                                       "train": {"steps": 3, "batch_size": 4, "warmup_steps": 0}})
    torch.manual_seed(0)
    ar.fit(section, small_tokenizer, review_texts[:20], RunContext(progress=True))
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("[train] 3/3 steps (100%) loss ") and "tokens per s" in line and "elapsed" in line


def test_the_runner_streams_a_running_stages_progress_lines(tmp_path):
    log = tmp_path / "stage.log"
    log.write_text("")
    seen = []

    def stage():
        with open(log, "a") as f:
            for line in ("[train] 1/4 steps (25%) loss 7.1, 0s elapsed, ETA 3s\n", "Running stage 'x'\n",
                         "[train] 2/4 steps (50%) loss 6.9, 1s elapsed, ETA 2s\n"):
                f.write(line)
                f.flush()
                time.sleep(0.05)

    with follow_progress(log, seen.append, every_s=0.02):
        worker = threading.Thread(target=stage)
        worker.start()
        worker.join()
    assert seen == ["[train] 1/4 steps (25%) loss 7.1, 0s elapsed, ETA 3s",
                    "[train] 2/4 steps (50%) loss 6.9, 1s elapsed, ETA 2s"]


def test_stages_done_of_those_to_run_with_an_eta():
    plan = Plan(order=["prepare", "train", "sample", "report"],
                upstream={"prepare": set(), "train": {"prepare"}, "sample": {"train", "prepare"},
                          "report": {"sample", "train", "prepare"}}, changed={"train"})
    assert stages_to_run(plan, plan.order) == ["train", "sample", "report"]  # prepare is up to date
    progress = StageProgress(3, jobs=1)
    assert progress.line() == "0/3 stages"
    progress.finished("train", "ran", 60.0)
    assert progress.line() == "1/3 stages, ETA 2m00s"
    progress.finished("sample", "skipped", 5.0)  # DVC found it unchanged after all: done, not in the mean time
    assert progress.line() == "2/3 stages, ETA 1m00s"
