"""The report stage built from a fixture of metrics files: the header names the corpus and judge, the verdict
comes first, intervals are printed, a degenerate row is flagged and never ranked, foreign ablations are dropped,
and an over-long corpus for a canvas is warned about."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from textdiff.report.provenance import base_params_digest
from tests.reference_rows import profile_raw

ROOT = Path(__file__).resolve().parents[1]


def write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)


def eval_metrics(name, gen_ppl, mauve, mauve_ci, *, degenerate=False, reasons=(), div=0.8):
    return {"row": name, "num_samples": 24, "gen_ppl": gen_ppl, "gen_ppl_ci": [gen_ppl * 0.9, gen_ppl * 1.1],
            "gen_ppl_sample_mean": gen_ppl, "entropy": 2.5, "entropy_ci": [2.4, 2.6], "div": div,
            "div_ci": None if div is None else [div - 0.05, div + 0.05], "mem": 0.1, "mem_ci": [0.05, 0.15],
            "mauve": mauve, "mauve_ci": mauve_ci, "mauve_n": 24, "bootstrap_resamples": 1000,
            "mauve_bootstrap_resamples": 50, "degenerate": degenerate, "degenerate_reasons": list(reasons),
            "samples_per_s": 10.0, "tokens_per_s": 100.0, "empty_share": 0.0,
            "repeated_token_share": 0.92 if degenerate else 0.0, "noise_like_share": 0.25}


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> str:
    d = tmp_path_factory.mktemp("report")
    raw = profile_raw("tiny")
    rows = raw["rows"]
    raw["rows"] = {"ar": rows["ar"], "mdlm": rows["mdlm"], "sedd_absorb": {
        **rows["sedd_uniform"], "model": {"graph": "absorbing", "schedule": "loglinear"}},
        "sedd_uniform": rows["sedd_uniform"]}
    raw["steps_sweep"] = {"families": []}
    raw["data"].update(source="files", files=["corpus/reviews.jsonl"])
    (d / "params.yaml").write_text(yaml.safe_dump(raw))
    write(d / "data/prepared/stats.json", {
        "corpus": {"source": "files", "name": "corpus/reviews.jsonl", "sha256": "c0ffee" * 10,
                   "files": [{"path": "corpus/reviews.jsonl", "sha256": "abc123" * 10, "bytes": 2048}]},
        "data_sha256": "d47a" * 16, "splits": {"train": 100, "valid": 12, "test": 12}})
    texts = "\n".join(json.dumps({"text": f"held out sentence {i} .", "label": None}) for i in range(12)) + "\n"
    write(d / "data/prepared/test.jsonl", texts)
    write(d / "data/prepared/valid.jsonl", texts)
    write(d / "metrics/judge.json", {"kind": "trained", "steps": 40, "parameters": 12345, "heldout_ppl": 41.5,
                                     "tokenizer": "project"})
    write(d / "metrics/tokenizer.json", {"canvas_lengths": {"counts": {"10": 60, "70": 40}}})  # 40% > 48 tokens
    write(d / "metrics/eval/reference.json", eval_metrics("reference", 30.0, 0.95, [0.9, 0.99]))
    write(d / "metrics/eval/noise_floor.json", eval_metrics("noise_floor", 5000.0, 0.01, [0.004, 0.02]))
    write(d / "metrics/eval/ar.json", eval_metrics("ar", 80.0, 0.6, [0.5, 0.7]))
    write(d / "metrics/eval/mdlm.json", eval_metrics("mdlm", 3.0, 0.97, [0.96, 0.98], degenerate=True, div=None,
                                                     reasons=["92% of samples are one repeated token"]))
    write(d / "metrics/eval/sedd_absorb.json", eval_metrics("sedd_absorb", 300.0, 0.2, [0.15, 0.25]))
    write(d / "metrics/eval/sedd_uniform.json", eval_metrics("sedd_uniform", 400.0, 0.1, [0.05, 0.14]))
    evidence = {"ar": (1.5, "prefix_swap", "causal", 1.0), "sedd_absorb": (0.9, "masked_nll_by_share", "absorbing", 2.0),
                "sedd_uniform": (0.4, "partner_swap", "uniform", 0.8), "mdlm": (0.6, "masked_nll_by_share", "absorbing", 1.7)}
    for name, ppl, ci, kind in (("ar", 60.0, [57.0, 63.0], "exact"),
                                ("sedd_absorb", 300.0, [280.0, 320.0], "ELBO upper bound"),
                                ("sedd_uniform", 500.0, [480.0, 520.0], "ELBO upper bound"),
                                ("mdlm", 350.0, [340.0, 360.0], "ELBO upper bound")):
        margin, probe, graph, value = evidence[name]
        write(d / f"metrics/likelihood/{name}.json", {"row": name, "heldout_ppl": ppl, "heldout_ppl_ci": ci,
                                                      "heldout_ppl_bound": kind, "heldout_tokens": 200,
                                                      "context_blind_margin": margin,
                                                      "context_probe": {"probe": probe, "graph": graph, "value": value}})
        write(d / f"metrics/train/{name}.json", {"steps": 30, "train_flops": 1.0e9, "budget_flops": 1.0e9,
                                                 "budget_share": 1.0, "final_loss": 3.0, "parameters": 1000})
        write(d / f"metrics/sample/{name}.json", {"steps": 16, "nfe": 8.0,
                                                  "sample_flops_per_sample": 1.0e6, "wall_s": 1.0})
        write(d / f"samples/{name}.jsonl", texts)
    digest = base_params_digest(raw, "ar")
    write(d / "reports/ablations.json", {
        "ar_top_p": {"description": "AR nucleus", "row": "ar", "data_sha256": "d47a" * 16, "base_params": digest,
                     "rows": [{"name": "baseline (params.yaml)", "overrides": [], "gen_ppl": 80.0, "mauve": 0.6,
                               "mauve_ci": [0.5, 0.7]},
                              {"name": "ar-p09", "overrides": ["ar.sample.top_p=0.9"], "gen_ppl": 50.0,
                               "mauve": 0.65, "mauve_ci": [0.55, 0.75]}]},
        "rotten_tomatoes_group": {"description": "from another corpus", "row": "ar", "data_sha256": "0ther" * 8,
                                  "base_params": digest, "rows": [{"name": "old-run", "overrides": [],
                                                                   "gen_ppl": 1.0, "mauve": 0.99}]}})
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    out = subprocess.run([sys.executable, "-m", "stages.report"], cwd=d, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    return (d / "reports" / "report.md").read_text()


def test_header_names_the_corpus_file_hash_splits_and_judge(report):
    head = report.split("## Verdict")[0]
    assert "`corpus/reviews.jsonl` (sha256 abc123abc123" in head and "c0ffeec0ffee" in head
    assert "train 100, valid 12, test 12" in head and "Seed 0" in head
    assert "**41.5**" in head and "the judge is the stronger model" in head


def test_verdict_comes_first_and_skips_the_degenerate_row(report):
    assert report.index("## Verdict") < report.index("## Comparison")
    verdict = report.split("## Verdict")[1].split("## Comparison")[0]
    ranking = verdict.split("Not ranked")[0]
    assert "`mdlm`" not in ranking  # the best-looking MAUVE, but degenerate
    assert ranking.index("`ar`") < ranking.index("`sedd_absorb`") < ranking.index("`sedd_uniform`")
    assert "Not ranked, degenerate output: `mdlm` (92% of samples are one repeated token)" in verdict
    sedd_order = next(line for line in verdict.splitlines() if "SEDD-absorb < SEDD-uniform" in line)
    assert "**inconclusive**" in sedd_order  # sedd_absorb's bound 300 is far above ar's 60, but it is a bound:
    assert "an upper bound cannot refute" in sedd_order  # its true figure may lie anywhere below
    cache = next(line for line in verdict.splitlines() if "caching skips" in line)
    assert "**inconclusive**" in cache and "`mdlm` is degenerate" in cache  # never evidence, even for speed


def test_tables_carry_intervals_and_flag_degenerate_rows(report):
    comparison = report.split("## Comparison")[1].split("## Compute")[0]
    assert "| mdlm ⚠ degenerate |" in comparison and "0.600 [0.500, 0.700]" in comparison
    assert "80.0 [72.0, 88.0]" in comparison
    assert "⚠ Degenerate output, left out of every ranking (its held-out likelihood" in comparison
    assert "still counts as evidence): `mdlm`" in comparison
    assert "| mdlm ⚠ degenerate | 0% | 92% | 25% |" in comparison  # every row's shares of empty and repeated samples
    assert "≤ 300.0 [280.0, 320.0]" in report


def test_ablations_from_another_corpus_are_dropped_and_counted(report):
    ablations = report.split("## Ablations")[1].split("## Samples")[0]
    assert "### ar_top_p (ar)" in ablations and "`ar.sample.top_p=0.9`" in ablations
    assert "old-run" not in ablations and "### rotten_tomatoes_group" not in ablations
    assert "1 collected ablation group(s) left out" in ablations and "collected on other data" in ablations


def test_canvas_truncation_and_compute_are_reported_from_the_data(report):
    assert "- ⚠ `ar`: its canvas of 48 project tokens truncates 40% of the training texts" in report
    assert "`rows.ar.model.seq_len: 70` would fit 95%" in report
    compute = report.split("## Compute")[1].split("## Held-out likelihood")[0]
    assert "| ar | 1.00e+09 |" in compute and "1.00×" in compute
    assert "50 sampling steps" not in report and "training steps for every row" not in report


def test_the_pairwise_comparisons_come_from_the_data_file(report):
    """textdiff/report/comparisons.yaml names the pairs; rows this run lacks are said to be not measured."""
    import yaml

    from textdiff.report.notes import COMPARISONS_FILE

    pairs = [p for section in yaml.safe_load(COMPARISONS_FILE.read_text()).values() for p in section]
    assert len(pairs) == 3
    for pair in pairs:
        assert f"{pair['what']}: not measured (needs both `{pair['a']}` and `{pair['b']}` in `rows`)." in report
    code = [ROOT / "stages" / "report.py", *sorted((ROOT / "textdiff" / "report").glob("*.py"))]
    named = {p[k] for p in pairs for k in ("a", "b")} | {"ar", "mdlm", "embedding"}
    for path in code:  # no row name in the report code: rows come from params and metrics
        source = path.read_text()
        assert not any(f'"{name}"' in source or f"'{name}'" in source for name in named), path
