"""README's figures of the measured default run come from its committed record, not from memory."""

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "benchmarks" / "results" / "default_run"
sys.path.insert(0, str(ROOT / "benchmarks"))

from repro_table import table, training_share  # noqa: E402


def section(title: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def first_table(markdown: str) -> str:
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join(lines[start:end])


def test_the_timing_table_is_the_committed_runs():
    times = json.loads((RUN / "repro_times.json").read_text())
    assert first_table(section("How long it takes")) == table(times)


def test_the_quoted_wall_time_and_training_share_are_the_committed_runs():
    run = json.loads((RUN / "run.json").read_text())
    times = json.loads((RUN / "repro_times.json").read_text())
    text = section("How long it takes")
    quoted = re.search(r"\*\*([\d,]+) s \(([\d.]+) min\)\*\*", text)
    assert quoted and int(quoted[1].replace(",", "")) == run["wall_s_with_install"]
    assert abs(float(quoted[2]) - run["wall_s_with_install"] / 60) <= 0.051
    assert f"install included\n({run['install_s']} s)" in text
    assert f"{run['fp32_matmul_peak_gflops_2_threads']:.0f} GFLOP/s on 2 threads" in text
    assert f"({training_share(times):.0%};" in text.replace(" %", "%")


def test_the_report_quotes_the_committed_mauve_interval_measurement():
    from textdiff.report.notes import mauve_note

    cases = json.loads((ROOT / "benchmarks/results/mauve_interval.json").read_text())["cases"]
    ratios = sorted(c["ratio_bootstrap_to_sets"] for c in cases.values())
    held = [f"{c['intervals_holding_the_mean']} of {c['sets']}" for c in cases.values()]
    note = mauve_note([{"row": "ar", "mauve_n": 128}])
    assert f"{ratios[0]:.1f}–{ratios[-1]:.1f}×" in note and all(h in note for h in held)


def test_the_tiny_profile_time_is_the_committed_measurement():
    tiny = json.loads((ROOT / "benchmarks/results/tiny_run.json").read_text())
    text = " ".join(section("How long it takes").split())
    assert (f"{tiny['stages']} stages, in `runs/tiny`) took {tiny['repro_s']} s in a fresh clone, after the install "
            f"({tiny['install_s']} s;") in text
    assert f"fp32 matmul peak {tiny['fp32_matmul_peak_gflops_2_threads']:.0f} GFLOP/s on 2 threads" in text
    assert f"(`python -m pipelines.parallel --cold`): {tiny['repro_cold_s']} s (same record)" in text


def test_the_flow_times_are_the_committed_measurement():
    tiny = json.loads((ROOT / "benchmarks/results/tiny_run.json").read_text())
    text = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert (f"{tiny['flow_concurrency_2_s']} s with `concurrency: 2` against {tiny['flow_concurrency_1_s']} s with "
            f"`concurrency: 1`, the ephemeral server's start included ({tiny['repro_s']} s under `make repro`)") in text
    assert f"with nothing to do takes {tiny['flow_nothing_to_do_s']} s." in text
    per_stage = (tiny["repro_cold_s"] - tiny["repro_s"]) / tiny["stages"]
    assert (f"the tiny profile's {tiny['stages']} stages took {tiny['repro_cold_s']} s against {tiny['repro_s']} s: "
            f"about {per_stage:.1f} s more per stage") in text
