"""The verdict: ranking by separated intervals, claims checked from data, ablation provenance."""

from textdiff.report.provenance import base_params_digest, comparable_groups
import math

import pytest

from textdiff.report.verdict import (Estimate, check, judge_claim, load_claims, rank_tiers, ratio_interval,
                                     seed_half_width, verdict_section, with_seed_variance)


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
    assert check(about, rows, {})[0] == "inconclusive"  # points 2% apart, but the ratio's interval is wider than ± 5%
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
    groups = {"same": {"row": "embedding", "data_sha256": "d1", "base_params": digest, "rows": []},
              "other_data": {"row": "embedding", "data_sha256": "d2", "base_params": digest, "rows": []},
              "other_params": {"row": "embedding", "data_sha256": "d1", "base_params": "x", "rows": []},
              "old": {"row": "embedding", "rows": []}}
    kept, left_out = comparable_groups(groups, "d1", lambda r: base_params_digest(raw, r))
    assert list(kept) == ["same"]
    assert set(left_out) == {"other_data", "other_params", "old"} and "other data" in left_out["other_data"]


def ppl(point, lo, hi, bound=False):
    return {"heldout_ppl": point, "heldout_ppl_ci": [lo, hi], "heldout_ppl_bound": "ELBO upper bound" if bound else "exact"}


def test_the_ratio_interval_by_hand():
    """ln-scale se of each side = (ln hi − ln lo)/(2·1.96); the ratio's = their root sum of squares."""
    a, b = Estimate(100.0, 90.0, 110.0), Estimate(50.0, 48.0, 52.0)
    z = 1.959963984540054
    se = math.hypot(math.log(110 / 90), math.log(52 / 48)) / (2 * z)
    assert ratio_interval(a, b) == pytest.approx((2 * math.exp(-z * se), 2 * math.exp(z * se)))
    assert ratio_interval(Estimate(0.1, 0.0, 0.2), b) is None


def test_about_is_an_equivalence_test_that_wide_intervals_cannot_pass():
    spec = {"a": "x", "b": "y", "metric": "heldout_ppl", "relation": "about", "tolerance": 0.15}
    tight = {"x": ppl(100, 98, 102), "y": ppl(104, 102, 106)}
    assert check(spec, tight, {})[0] == "reproduced"
    wide = {"x": ppl(100, 60, 160), "y": ppl(104, 60, 170)}  # same points, wide intervals: not shown equal
    outcome, numbers = check(spec, wide, {})
    assert outcome == "inconclusive" and "against 1 ± 0.15" in numbers
    far = {"x": ppl(100, 98, 102), "y": ppl(150, 147, 153)}
    assert check(spec, far, {})[0] == "refuted"


def test_a_bound_can_show_no_worse_than_but_never_equal():
    spec = {"a": "ar", "b": "diff", "metric": "heldout_ppl", "relation": "about", "tolerance": 0.15}
    below = {"ar": ppl(100, 98, 102), "diff": ppl(95, 93, 97, bound=True)}  # bound ≤ AR: diffusion no worse
    outcome, numbers = check(spec, below, {})
    assert outcome == "reproduced" and "no worse than" in numbers
    above = {"ar": ppl(100, 98, 102), "diff": ppl(160, 157, 163, bound=True)}  # the truth may lie anywhere below
    outcome, numbers = check(spec, above, {})
    assert outcome == "inconclusive" and "cannot refute" in numbers
    much_lower = {"ar": ppl(100, 98, 102), "diff": ppl(60, 59, 61, bound=True)}  # truth ≤ bound: not equal
    assert check(spec, much_lower, {})[0] == "refuted"
    both = {"ar": ppl(100, 98, 102, bound=True), "diff": ppl(100, 98, 102, bound=True)}
    outcome, numbers = check(spec, both, {})
    assert outcome == "inconclusive" and "two upper bounds" in numbers


def test_an_order_against_a_bound_is_shown_only_with_the_bound_below():
    lower = {"a": "exact", "b": "bounded", "metric": "heldout_ppl", "relation": "lower"}
    rows = {"exact": ppl(100, 98, 102), "bounded": ppl(150, 147, 153, bound=True)}
    outcome, numbers = check(lower, rows, {})
    assert outcome == "inconclusive" and "upper bound lies above" in numbers  # bounded's truth could be < 100
    curve = lambda nats: [{"flops": 1e12, "heldout_nats": nats}, {"flops": 2e12, "heldout_nats": nats - 0.1}]
    rows = {"exact": {**ppl(150, 147, 153), "learning_curve": curve(5.2)},
            "bounded": {**ppl(100, 98, 102, bound=True), "learning_curve": curve(4.8)}}
    assert check(lower, rows, {})[0] == "refuted"  # bounded's truth ≤ 102 < 147: the order is shown
    assert check({**lower, "a": "bounded", "b": "exact"}, rows, {})[0] == "reproduced"


def test_seed_variance_widens_intervals_with_students_t():
    assert seed_half_width([10.0, 12.0, 14.0]) == pytest.approx(4.302653 * 2.0, rel=1e-5)  # t_{.975,2}·sd
    assert seed_half_width([10.0]) is None
    groups = {"training_seeds/x": {"seeds": True, "row": "x",
                                   "rows": [{"name": "baseline", "heldout_ppl": 100.0}, {"name": "seed-1", "heldout_ppl": 104.0},
                                            {"name": "seed-2", "heldout_ppl": 96.0}]}}
    rows = {"x": ppl(100, 99, 101), "y": ppl(90, 89, 91)}
    wider = with_seed_variance(rows, groups)
    half = 4.302653 * 4.0
    assert wider["x"]["heldout_ppl_ci"] == pytest.approx([100 - half, 100 + half], rel=1e-5)
    assert wider["x"]["heldout_ppl_seeds"] == 3 and wider["y"] == rows["y"]
    spec = {"a": "y", "b": "x", "metric": "heldout_ppl", "relation": "lower"}
    assert check(spec, rows, {})[0] == "reproduced"  # the single run's intervals separate
    outcome, numbers = check(spec, wider, {})
    assert outcome == "inconclusive" and "`x` 3 seeds" in numbers  # not once the seeds' spread is counted
    own_wider = with_seed_variance({"x": ppl(100, 50, 200)}, groups)  # the wider of the two, never narrower
    assert own_wider["x"]["heldout_ppl_ci"] == [50, 200]


def test_a_degenerate_rows_likelihood_is_still_evidence():
    """Held-out likelihood does not depend on the samples: degenerate samples do not void it, a failed
    likelihood check does."""
    failed_samples = {"learned": False, "no_signal": True, "checks": [], "deciding": "gen_ppl at the floor"}
    good = {**ppl(100, 98, 102, bound=True), "degenerate": True, "learned_check": failed_samples,
            "context_blind_margin": 1.4,
            "context_probe": {"graph": "absorbing", "probe": "masked_nll_by_share", "value": 2.0}}
    worse = {**ppl(300, 290, 310, bound=True), "learned_check": failed_samples, "context_blind_margin": 0.9,
             "context_probe": {"graph": "absorbing", "probe": "masked_nll_by_share", "value": 2.0}}
    spec = {"a": "good", "b": "worse", "metric": "heldout_ppl", "relation": "lower"}
    outcome, numbers = check(spec, {"good": good, "worse": worse}, {})
    assert outcome == "reproduced", numbers
    weak = {**worse, "context_blind_margin": 0.1}  # below the absorbing margin of 0.5: the likelihood has not learned
    outcome, numbers = check(spec, {"good": good, "worse": weak}, {})
    assert outcome == "inconclusive" and "`worse` has not learned" in numbers
    mauve_spec = {"a": "good", "b": "worse", "metric": "mauve", "relation": "higher"}
    assert check(mauve_spec, {"good": {**good, "mauve": 0.5}, "worse": {**worse, "mauve": 0.1}}, {}) == \
        ("inconclusive", "`good` is degenerate")  # a sample figure of degenerate samples is never evidence
