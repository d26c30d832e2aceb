"""The learning-curve claims (textdiff.report.compute_gap): the compute factor by hand, the data-constrained
crossover, provenance (a summary from other data or params is "not run on this data"), the report's rows, and
`make curves`'s Prefect flow on crafted points (a real flow under prefect_test_harness, no training)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from textdiff.config import parse_params
from tests.reference_rows import profile_raw
from textdiff.report.compute_gap import (claim_rows, compute_factor, compute_to_reach, current_points,
                                         data_constrained, factor_verdict, training_digest)

ROOT = Path(__file__).resolve().parents[1]
LEARNED = {"graph": "absorbing", "context_blind_margin": 0.9, "probe": "masked_nll_by_share", "probe_value": 1.8,
           "flops": 1.0, "heldout_nats": 5.0}


def point(row, budget, nats, se=0.0, epochs=1.0, learned=True, **extra):
    end = {**LEARNED, "probe_value": 1.8 if learned else 0.5}
    return {"row": row, "budget_flops": budget, "train_flops": budget, "heldout_nats": nats, "heldout_nats_se": se,
            "epochs": epochs, "bound": "exact" if row == "ar" else "ELBO upper bound", "curve": [end],
            "overridden": False, "data_sha256": "d", "training_digest": f"{row}-digest", **extra}


AR = [point("ar", 1e12, 6.0, epochs=0.5), point("ar", 4e12, 5.0, epochs=2), point("ar", 1.6e13, 4.5, epochs=8),
      point("ar", 6.4e13, 4.4, epochs=32)]


def test_compute_to_reach_interpolates_nats_in_log_flops():
    curve = [(1e12, 6.0, 0), (4e12, 5.0, 0), (1.6e13, 4.5, 0)]
    at, how = compute_to_reach(curve, 5.5)  # halfway between the first two in nats: their geometric mean
    assert how == "measured" and at == pytest.approx(2e12)
    at, how = compute_to_reach(curve, 4.75)
    assert at == pytest.approx(math.sqrt(4e12 * 1.6e13))
    assert compute_to_reach(curve, 6.5) == (1e12, "below")  # the smallest run is already better: at most that
    assert compute_to_reach(curve, 4.0) == (None, "beyond")


def test_the_compute_factor_uses_the_largest_learned_run_and_its_interval():
    mdlm = [point("mdlm", 4e12, 6.2, learned=False), point("mdlm", 1.6e13, 5.5, se=0.1),
            point("mdlm", 6.4e13, 9.0, learned=False)]  # the largest run failed its check: not evidence
    out = compute_factor(AR, mdlm)
    assert out["row_flops"] == 1.6e13 and out["ar_flops"] == pytest.approx(2e12) and out["bound"]
    assert out["factor"] == pytest.approx(8.0)
    lo, hi = out["factor_range"]  # 5.5 ± 0.196 nats on the AR's 1 nat per 4× segment
    assert lo == pytest.approx(1.6e13 / (1e12 * 4 ** ((6.0 - 5.304) / 1.0)))
    assert hi == pytest.approx(1.6e13 / (1e12 * 4 ** ((6.0 - 5.696) / 1.0)))
    assert compute_factor(AR, [point("mdlm", 4e12, 6.2, learned=False)])["factor"] is None


def test_factor_verdicts_treat_a_bound_as_at_most():
    base = {"row_flops": 1.6e13, "row_nats": 5.5, "ar_flops": 1e12, "how": "measured"}
    outcome, numbers = factor_verdict({**base, "factor": 16, "factor_range": [10, 25], "bound": True}, 16)
    assert outcome == "inconclusive" and "at most 25×" in numbers  # a bound cannot show the factor is not smaller
    assert factor_verdict({**base, "factor": 16, "factor_range": [10, 25], "bound": False}, 16)[0] == "reproduced"
    assert factor_verdict({**base, "factor": 3, "factor_range": [2, 4], "bound": True}, 16)[0] == "refuted"
    assert factor_verdict({**base, "factor": 100, "factor_range": [60, 200], "bound": True}, 16)[0] == "inconclusive"
    assert factor_verdict({**base, "factor": 100, "factor_range": [60, 200], "bound": False}, 16)[0] == "refuted"
    outcome, numbers = factor_verdict({**base, "factor": 20, "factor_range": [12, None], "bound": False}, 16)
    assert outcome == "inconclusive" and "[12, open]" in numbers  # an end beyond the AR's runs is open
    assert factor_verdict({"factor": None, "why": "no run"}, 16) == ("inconclusive", "no run")


def test_a_factor_beyond_the_ar_runs_is_not_passed_off_as_measured():
    better_than_every_ar_run = [point("mdlm", 4e13, 4.0)]
    out = compute_factor(AR, better_than_every_ar_run)
    assert out["factor"] is None and "does not get that good" in out["why"]
    worse_than_the_smallest = [point("mdlm", 4e13, 6.5)]
    out = compute_factor(AR, worse_than_the_smallest)
    assert out["factor"] is None and "at least 40×" in out["why"]  # 4e13 over the AR's smallest run, 1e12
    near_the_end = [point("mdlm", 1.6e13, 4.45, se=0.1)]  # its better end lies beyond the AR's largest run
    out = compute_factor(AR, near_the_end)
    assert out["factor"] is not None and out["factor_range"][0] is None and out["factor_range"][1] is not None


def test_data_constrained_finds_the_crossover_or_says_there_is_none():
    mdlm = [point("mdlm", b, n, epochs=e) for b, n, e in ((1e12, 7.0, 0.4), (4e12, 6.0, 1.6), (1.6e13, 5.0, 6.4),
                                                             (6.4e13, 4.6, 25))]
    out = data_constrained(AR, mdlm)
    assert out["crossover_flops"] is None and out["ar_last_gain"] == pytest.approx(0.1)
    assert out["masked_last_gain"] == pytest.approx(0.4)
    mdlm[-1]["heldout_nats"] = 4.3  # below the AR's 4.4 at the same budget
    assert data_constrained(AR, mdlm)["crossover_flops"] == 6.4e13


def test_only_points_on_this_data_and_params_count():
    points = [point("ar", 1e12, 6.0), point("ar", 1e12, 5.9, data_sha256="other"),
              point("ar", 4e12, 5.0, overridden=True), point("ar", 4e12, 5.1, training_digest="old")]
    assert [q["heldout_nats"] for q in current_points(points, "ar", "d", "ar-digest")] == [6.0]


def test_training_digest_follows_the_rows_params():
    raw = profile_raw("tiny")
    p = parse_params(raw)
    raw["rows"]["ar"].setdefault("train", {})["lr"] = 0.123
    assert training_digest(p, "ar") != training_digest(parse_params(raw), "ar")
    assert training_digest(p, "mdlm") == training_digest(parse_params(raw), "mdlm")


def summary(**extra):
    return {"data_sha256": "d", "training_digests": {"ar": "a1", "mdlm": "m1"}, "conditions": "bundled corpus",
            "claims": {"masked_compute_factor": {"factor": 12.0, "factor_range": [9.0, 20.0], "bound": True,
                                                 "row_flops": 4e13, "row_nats": 5.9, "ar_flops": 3.3e12,
                                                 "how": "measured"},
                       "embedding_compute_factor": {"not_run": "no likelihood bound"},
                       "data_constrained": data_constrained(AR, AR)}, **extra}


def test_claim_rows_are_not_run_on_other_data_or_params():
    rows = claim_rows(summary(), "d", {"ar": "a1", "mdlm": "m1"})
    assert [r["verdict"] for r in rows] == ["inconclusive", "inconclusive", "inconclusive"]
    assert "at most 20×" in rows[0]["evidence"][0]  # the factor from a bound: an upper bound only
    assert "conditions: bundled corpus" in rows[0]["evidence"] and "not run: no likelihood bound" in rows[1]["evidence"][0]
    for data, digests, why in (("other", {"ar": "a1", "mdlm": "m1"}, "computed on other data"),
                               ("d", {"ar": "a1", "mdlm": "m2"}, "params of `mdlm` changed")):
        stale = claim_rows(summary(), data, digests)
        assert all(r["verdict"] == "inconclusive" and why in r["evidence"][0] for r in stale)
    assert "`make curves` has not been run" in claim_rows(None, "d", {})[0]["evidence"][0]


def test_the_verdict_table_shows_the_judged_claims():
    from textdiff.report.verdict import verdict_section

    text = verdict_section({}, {}, [], judged=claim_rows(summary(), "d", {"ar": "a1", "mdlm": "m1"}))
    line = next(x for x in text.splitlines() if "≈ 16× the AR's compute" in x)
    assert "**inconclusive**" in line and "12× [9, 20]" in line and "conditions: bundled corpus" in line


def test_make_curves_flow_summarises_points_without_training(tmp_path):
    """The real Prefect flow on a repository whose points are all there: no task trains, the summary is written
    from the points of this data and params only. In a child process: the flow changes its working folder."""
    raw = profile_raw("tiny")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    p = parse_params(raw)
    prepared = tmp_path / "data" / "prepared"
    prepared.mkdir(parents=True)
    (prepared / "stats.json").write_text(json.dumps({"data_sha256": "d"}))
    (prepared / "train.jsonl").write_text("".join(json.dumps({"text": f"s {i}"}) + "\n" for i in range(10)))
    budgets = [1e12, 4e12]
    points = [point(row, b, n, training_digest=training_digest(p, row))
              for row, pts in (("ar", ((1e12, 6.0), (4e12, 5.0))), ("mdlm", ((1e12, 7.0), (4e12, 5.5))))
              for b, n in pts] + [point("mdlm", 4e12, 1.0, data_sha256="other")]
    out = tmp_path / "benchmarks" / "results" / "learning_curves"
    out.mkdir(parents=True)
    (out / "points.jsonl").write_text("".join(json.dumps(q) + "\n" for q in points))
    code = ("from prefect.testing.utilities import prefect_test_harness\n"
            "from pipelines.curves import curves\n"
            "with prefect_test_harness(server_startup_timeout=300):\n"
            f"    curves(repo_dir={str(tmp_path)!r}, budgets={budgets!r})\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PYTHONPATH": str(ROOT),
                              "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert "0 point(s) to train" in run.stdout + run.stderr
    written = json.loads((tmp_path / "benchmarks" / "results" / "compute_gap.json").read_text())
    factor = written["claims"]["masked_compute_factor"]
    assert factor["row_nats"] == 5.5 and factor["factor"] == pytest.approx(4e12 / (1e12 * 4 ** 0.5))
    assert written["training_digests"] == {"ar": training_digest(p, "ar"), "mdlm": training_digest(p, "mdlm")}
