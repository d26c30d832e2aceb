"""The report's builders as pure functions: tables and sentences from metrics dicts, with no files and no stage.
`tests/test_report.py` runs the whole stage on a fixture of files; these check the pieces by hand."""

import math
from pathlib import Path

import yaml

from textdiff.report.document import render
from textdiff.report.inputs import REFERENCE_ROW, RunMetrics, load_run
from textdiff.report.notes import comparisons
from textdiff.report.tables import compute_table, likelihood_order, likelihood_table, space_tables, sweep_table
from tests.reference_rows import profile_params


def test_likelihood_table_marks_bounds_and_derives_nats_from_the_perplexity():
    rows = [{"row": "x", "heldout_ppl": 100.0, "heldout_ppl_ci": [100.0, 100.0], "heldout_ppl_bound": "exact"},
            {"row": "y", "heldout_ppl": 300.0, "heldout_ppl_ci": [280.0, 320.0], "heldout_ppl_bound": "ELBO",
             "heldout_nats_per_token": 5.7, "heldout_nats_per_token_se": 0.01},
            {"row": "no likelihood stage", "gen_ppl": 3.0}]
    table = likelihood_table(rows).splitlines()
    assert len(table) == 4  # head, alignment, the two rows with a likelihood
    assert table[2].startswith("| x | 100.0 | 4.605 |")  # log(100) = 4.6052; no ≤ on an exact figure
    assert table[3].startswith("| y | ≤ 300.0 [280.0, 320.0] | 5.700 ± 0.020 | ELBO |")  # 1.96 × 0.01
    assert likelihood_order(rows) == "Measured order, lowest first: x (100.0) < y (300.0)."


def test_compute_table_flags_a_row_off_its_budget_and_says_when_there_is_none():
    compute = {"a": {"train_flops": 1.0e9, "budget_flops": 1.0e9, "within_budget": True,
                     "components": {"diffusion": 1.0e9}},
               "b": {"train_flops": 1.5e9, "budget_flops": 1.0e9, "within_budget": False}}
    table = compute_table(compute, {"a": {"nfe": 8, "sample_flops_per_sample": 2.0e6}})
    line_a, line_b = (next(line for line in table.splitlines() if line.startswith(f"| {m} |")) for m in "ab")
    assert "| 1.00× |" in line_a and "diffusion 1.00e+09" in line_a and "| 8 | 2.00e+06 |" in line_a
    assert "| 1.50× ⚠ |" in line_b and line_b.endswith("| – | – |")
    assert "Budget: 1.00e+09 training FLOPs per row" in table
    assert "No FLOP budget set" in compute_table({"a": {"train_flops": 1.0e9}}, {})


def test_sweep_table_leaves_a_gap_where_a_row_skipped_a_step_count():
    point = lambda n, ppl: {"steps": n, "gen_ppl": ppl, "entropy": 2.0, "samples_per_s": 4.0}  # noqa: E731
    table = sweep_table({"p": {"points": [point(8, 900.0), point(32, 400.0)]}, "q": {"points": [point(32, 500.0)]}})
    lines = table.splitlines()
    assert "8 steps" in lines[0] and "32 steps" in lines[0]
    assert lines[2] == "| p | 900 / 2.00 / 4.0 | 400 / 2.00 / 4.0 |"
    assert lines[3] == "| q | – | 500 / 2.00 / 4.0 |"
    assert "No steps sweep yet" in sweep_table({})


def test_space_tables_show_decoder_accuracy_per_diffusion_time():
    spaces = {"e": {"features": "minilm", "sentences": 1000, "tokens": 20000, "at_max_length": 3,
                    "cache_bytes": 3 * 2**20, "encode_wall_s": 12.0},
              "latent row without features": {"sentences": 10}}
    decoders = {"e": {"held_out": [{"t": 0.0, "token_accuracy": 0.99, "exact_match": 0.9, "sentences": 64},
                                   {"t": 0.15, "token_accuracy": 0.8, "exact_match": 0.2, "sentences": 64}],
                      "steps": 300, "wall_s": 40.0, "parameters": 12345}}
    text = space_tables(spaces, decoders)
    assert "| e | minilm | 1,000 | 20,000 | 3 | 3.0 MiB | 12 s |" in text
    assert "| e | 0.9900 / 0.900 | 0.8000 / 0.200 | 300 | 40 s | 12,345 |" in text
    assert "latent row without features" not in text and "the 64 test sentences" in text
    assert space_tables({}, {}) == "No encoder-space rows in `rows`."


def test_a_comparison_pair_is_judged_on_intervals(tmp_path: Path):
    pairs = tmp_path / "pairs.yaml"
    pairs.write_text(yaml.safe_dump({"s": [{"a": "u", "b": "v", "what": "U vs V"}, {"a": "u", "b": "w", "what": "U vs W"}]}))
    rows = {"u": {"mauve": 0.8, "mauve_ci": [0.7, 0.9]}, "v": {"mauve": 0.3, "mauve_ci": [0.2, 0.4]}}
    ahead, missing = comparisons("s", rows, pairs)
    assert ahead.startswith("U vs V:") and ahead.endswith("`u` is ahead.")
    assert missing == "U vs W: not measured (needs both `u` and `w` in `rows`)."
    rows["v"]["mauve_ci"] = [0.2, 0.75]  # the intervals now overlap
    assert comparisons("s", rows, pairs)[0].endswith("so neither is ahead.")


def test_load_run_reads_the_files_and_render_is_a_pure_function_of_them(tmp_path: Path):
    from textdiff.io import write_json, write_jsonl

    p = profile_params("tiny")
    row = next(iter(p.row_families))
    write_json(tmp_path / "data/prepared/stats.json", {"splits": {"train": 5, "valid": 2, "test": 2}})
    write_jsonl(tmp_path / "data/prepared/valid.jsonl", [{"text": "a held-out line ."}, {"text": "another ."}])
    write_json(tmp_path / "metrics/eval/reference.json", {"gen_ppl": 20.0, "mauve": 1.0})
    write_json(tmp_path / f"metrics/eval/{row}.json", {"gen_ppl": 90.0, "mauve": 0.5, "mauve_ci": [0.4, 0.6]})
    write_json(tmp_path / f"metrics/likelihood/{row}.json", {"heldout_ppl": math.e ** 5, "heldout_ppl_bound": "exact"})
    write_json(tmp_path / f"metrics/sample/{row}.json", {"steps": 32, "nfe": 8})
    write_jsonl(tmp_path / f"samples/{row}.jsonl", [{"text": "a sampled line ."}, {"text": ""}])
    (tmp_path / "metrics/train").mkdir(parents=True)
    (tmp_path / f"metrics/train/{row}_loss.csv").write_text("step,loss\n0,8.5\n10,6.25\n")

    run = load_run(tmp_path, list(p.row_families), list(p.swept_rows))
    assert [r["row"] for r in run.rows] == [REFERENCE_ROW, row]  # rows without eval metrics are left out
    assert run.by_name()[row]["cache_speedup"] == 4.0 and run.by_name()[row]["heldout_ppl_bound"] == "exact"
    assert run.loss_curves == {row: [(0, 8.5), (10, 6.25)]}
    assert run.texts == {REFERENCE_ROW: ["a held-out line .", "another ."], row: ["a sampled line .", ""]}

    report = render(p, run, {}, {}, claims=[])
    assert report == render(p, run, {}, {}, claims=[])
    sections = [line for line in report.splitlines() if line.startswith("## ")]
    assert sections[:3] == ["## Verdict", "## Comparison", "## Compute"] and sections[-1] == "## Samples"
    assert f"### {row}\n\n1. a sampled line .\n2. (empty)" in report
    assert f"| {row} | 148.4 |" in report  # e^5 in the likelihood table
    assert "Judge LM for gen_ppl" in report and "(no judge metrics yet)" in report


def test_an_empty_run_renders_with_every_section_saying_what_is_missing():
    p = profile_params("tiny")
    report = render(p, RunMetrics(rows=[], stats={"splits": {}}), {}, {}, claims=[])
    assert "No steps sweep yet" in report and "No encoder-space rows" in report
    assert "No ablations collected on this run's data and params" in report


def test_the_mauve_note_gives_each_rows_sample_size():
    from textdiff.report.notes import mauve_note

    note = mauve_note([{"row": "real text (held-out)", "mauve_n": 512}, {"row": "ar", "mauve_n": 128},
                       {"row": "mdlm", "mauve_n": 128}])
    assert "n = min(texts, references): 512 for `real text (held-out)`; 128 for `ar`, `mdlm`." in note
    assert "128 for every row." in mauve_note([{"row": "ar", "mauve_n": 128}])
