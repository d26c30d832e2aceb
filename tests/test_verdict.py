"""The verdict: ranking by separated intervals, claims checked from data, ablation provenance."""

from textdiff.report.provenance import base_params_digest, comparable_groups
from textdiff.report.verdict import Estimate, check, judge_claim, load_claims, rank_tiers, verdict_section


def row(mauve, lo, hi, **extra):
    return {"mauve": mauve, "mauve_ci": [lo, hi], **extra}


def test_a_row_is_ahead_only_when_intervals_separate():
    rows = {"a": row(0.9, 0.85, 0.95), "b": row(0.8, 0.7, 0.88), "c": row(0.5, 0.45, 0.55),
            "d": row(0.99, 0.0, 1.0, degenerate=True)}
    assert rank_tiers(rows) == [["a", "b"], ["c"]]  # b overlaps a; c is below both; d is never ranked


def test_lower_is_better_metrics_rank_upward():
    rows = {"x": {"heldout_ppl": 100.0, "heldout_ppl_ci": [95.0, 105.0]},
            "y": {"heldout_ppl": 50.0, "heldout_ppl_ci": [48.0, 52.0]}}
    assert rank_tiers(rows, "heldout_ppl") == [["y"], ["x"]]


def test_check_outcomes_follow_the_intervals():
    rows = {"a": row(0.9, 0.85, 0.95), "b": row(0.5, 0.4, 0.6), "c": row(0.88, 0.8, 0.9)}
    assert check({"a": "a", "b": "b", "metric": "mauve", "relation": "higher"}, rows, {})[0] == "reproduced"
    assert check({"a": "b", "b": "a", "metric": "mauve", "relation": "higher"}, rows, {})[0] == "refuted"
    assert check({"a": "a", "b": "c", "metric": "mauve", "relation": "higher"}, rows, {})[0] == "inconclusive"
    assert check({"a": "a", "b": "zz", "metric": "mauve", "relation": "higher"}, rows, {}) == \
        ("inconclusive", "`zz` not measured")
    about = {"a": "a", "b": "c", "metric": "mauve", "relation": "about", "tolerance": 0.05}
    assert check(about, rows, {})[0] == "reproduced"
    assert check({**about, "b": "b"}, rows, {})[0] == "refuted"
    ratio = {"a": "a", "metric": "mauve", "relation": "at_least", "value": 0.95}
    assert check(ratio, rows, {})[0] == "refuted" and check({**ratio, "value": 0.5}, rows, {})[0] == "reproduced"


def test_degenerate_rows_are_never_evidence():
    rows = {"a": row(0.9, 0.85, 0.95, degenerate=True), "b": row(0.1, 0.05, 0.15)}
    assert check({"a": "a", "b": "b", "metric": "mauve", "relation": "higher"}, rows, {})[0] == "inconclusive"


def test_a_claim_is_reproduced_only_when_every_check_is():
    rows = {"a": row(0.9, 0.85, 0.95), "b": row(0.5, 0.4, 0.6), "c": row(0.2, 0.1, 0.3)}
    claim = {"id": "x", "claim": "a > b > c", "source": "s",
             "checks": [{"a": "a", "b": "b", "metric": "mauve", "relation": "higher"},
                        {"a": "b", "b": "c", "metric": "mauve", "relation": "higher"}]}
    assert judge_claim(claim, rows, {})["verdict"] == "reproduced"
    rows["c"] = row(0.55, 0.5, 0.6)
    assert judge_claim(claim, rows, {})["verdict"] == "inconclusive"
    rows["c"] = row(0.95, 0.9, 0.99)
    assert judge_claim(claim, rows, {})["verdict"] == "refuted"


def test_ablation_checks_read_the_group_runs():
    groups = {"g": {"rows": [{"name": "on", "rounding_error": 0.1, "rounding_error_ci": [0.09, 0.11]},
                             {"name": "off", "rounding_error": 0.5, "rounding_error_ci": [0.4, 0.6]}]}}
    spec = {"group": "g", "a": "on", "b": "off", "metric": "rounding_error", "relation": "lower"}
    assert check(spec, {}, groups)[0] == "reproduced"
    assert check({**spec, "group": "missing"}, {}, groups)[0] == "inconclusive"


def test_the_shipped_claims_file_is_well_formed():
    claims = load_claims()
    assert len(claims) >= 6 and len({c["id"] for c in claims}) == len(claims)
    for c in claims:
        for spec in c["checks"]:
            assert spec["relation"] in {"lower", "higher", "about", "at_least"}
            assert "a" in spec and ("b" in spec or spec["relation"] == "at_least")
    text = verdict_section({"ar": row(0.5, 0.4, 0.6)}, {}, claims)
    assert text.count("**inconclusive**") == len(claims)  # nothing to compare against: no claim is decided


def test_estimate_without_interval_is_a_point():
    assert Estimate(1.0, 1.0, 1.0).overlaps(Estimate(1.0, 0.5, 2.0))


def test_ablations_from_other_data_or_params_are_left_out():
    raw = {"seed": 0, "data": {"source": "files"}, "defaults": {"train": {"lr": 0.001}},
           "rows": {"embedding": {"family": "embedding", "model": {"d_model": 128}}}}
    digest = base_params_digest(raw, "embedding")
    assert digest != base_params_digest({**raw, "seed": 1}, "embedding")
    assert digest != base_params_digest({**raw, "defaults": {"train": {"lr": 0.002}}}, "embedding")
    assert digest != base_params_digest({**raw, "rows": {"embedding": {"family": "embedding"}}}, "embedding")
    other = {**raw, "rows": {**raw["rows"], "mdlm": {"family": "mdlm"}}}
    assert digest == base_params_digest(other, "embedding")  # another row's params: same
    groups = {"same": {"model": "embedding", "data_sha256": "d1", "base_params": digest, "rows": []},
              "other_data": {"model": "embedding", "data_sha256": "d2", "base_params": digest, "rows": []},
              "other_params": {"model": "embedding", "data_sha256": "d1", "base_params": "x", "rows": []},
              "old": {"model": "embedding", "rows": []}}
    kept, left_out = comparable_groups(groups, "d1", lambda r: base_params_digest(raw, r))
    assert list(kept) == ["same"]
    assert set(left_out) == {"other_data", "other_params", "old"} and "other data" in left_out["other_data"]
