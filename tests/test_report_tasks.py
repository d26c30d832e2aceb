"""The report's infilling and control sections, from metrics fixtures (pure functions, no row names in code)."""

from textdiff.report.tasks import control_section, infill_section

INFILL = {
    "rowa": {"supported": True, "templates": 4, "fills_per_template": 3, "blank_share": 0.31, "truncated_templates": 0,
             "token_accuracy": 0.25, "token_accuracy_ci": [0.1, 0.4], "span_bleu2": 12.5, "span_bleu2_ci": [5.0, 20.0],
             "filled_gen_ppl": 80.0, "filled_gen_ppl_ci": [70.0, 90.0], "distinct_fills": 0.5,
             "distinct_fills_ci": [0.25, 0.75], "reference_gen_ppl": 40.0, "handicap": None},
    "rowb": {"supported": True, "templates": 4, "fills_per_template": 3, "blank_share": 0.31, "token_accuracy": 0.1,
             "span_bleu2": 0.0, "filled_gen_ppl": 120.0, "distinct_fills": 1.0, "handicap": "left to right"},
    "rowc": {"supported": False, "reason": "it has no positions"},
}


def test_infill_section_has_a_row_per_supporting_row_the_reasons_and_an_example():
    example = {"rowa": [{"text": "a b c", "reference_spans": ["b"], "fills": [{"text": "a x c"}]}]}
    out = infill_section(INFILL, example)
    assert "| rowa | 0.250 [0.100, 0.400] | 12.5 [5.0, 20.0] | 80.0 [70.0, 90.0] | 0.50 [0.25, 0.75] |" in out
    assert "| rowb † | 0.100 |" in out and "† rowb: left to right." in out
    assert "- **rowc** cannot infill: it has no positions" in out
    assert "(the held-out sentences themselves: 40.0)" in out and "31% of the tokens" in out
    assert "Example: *a b c*" in out and "- rowa: a x c" in out
    assert infill_section({}) == "No infill stage has run."


def test_control_section_reads_like_a_success_versus_fluency_table():
    label = {"success": 0.75, "success_ci": [0.6, 0.9], "unguided_success": 0.5, "unguided_success_ci": [0.35, 0.65],
             "gen_ppl": 90.0, "gen_ppl_ci": [80.0, 100.0], "div": 0.8, "div_ci": [0.7, 0.9]}
    metrics = {"rowa": {"supported": True, "strength": 2.0, "labels": {"fresh": label},
                        "unguided": {"gen_ppl": 70.0, "gen_ppl_ci": [60.0, 80.0]}},
               "rowb": {"supported": False, "reason": "no x0 distribution"}}
    out = control_section(metrics, {"heldout_accuracy": 0.7}, {"supported": True, "heldout_accuracy": 0.8,
                                                               "majority_share": 0.5})
    assert ("| rowa | fresh | 2 | 0.75 [0.60, 0.90] | 0.50 [0.35, 0.65] | 90.0 [80.0, 100.0] | 70.0 [60.0, 80.0] "
            "| 0.800 [0.700, 0.900] |") in out
    assert "held-out accuracy 0.800; majority label 0.500" in out and "held-out accuracy 0.700) is never" in out
    assert "- **rowb** cannot be guided: no x0 distribution" in out
    assert control_section(metrics, {}, {"supported": False, "reason": "no labels"}) == "Not run: no labels"
