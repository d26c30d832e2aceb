"""report: one Markdown report over every row with metrics, with samples and plots.

Reads this run's metrics (``textdiff.report.inputs``), draws the plots and writes what
``textdiff.report.document.render`` returns. Outputs reports/report.md and reports/plots/*.png.
"""

from __future__ import annotations

from pathlib import Path

from stages.all_params import params
from stages.common import PARAMS_FILE, REPORTS, say, stage_main
from textdiff.io import write_text

COMPUTE_GAP = Path("benchmarks/results/compute_gap.json")  # `make curves` (benchmarks/compute_gap.py), committed


@stage_main("report")
def main() -> None:
    import yaml

    from textdiff.report.compute_gap import claim_rows, training_digest
    from textdiff.report.document import comparable_ablations, render
    from textdiff.report.inputs import load_run, optional_json
    from textdiff.report.plots import plot_learning_curves, plot_losses, plot_quality, plot_steps
    from textdiff.report.verdict import load_claims

    p = params()
    raw_params = yaml.safe_load(PARAMS_FILE.read_text(encoding="utf-8")) or {}
    run = load_run(Path("."), list(p.row_families), list(p.swept_rows))
    plots = REPORTS / "plots"
    plot_quality(run.rows, plots / "quality.png")
    plot_losses(run.loss_curves, plots / "loss.png")
    plot_learning_curves(run.learning_curves, plots / "learning.png")
    plot_steps(run.sweeps, plots / "steps.png")
    ablations, left_out = comparable_ablations(p, raw_params, run.ablation_groups, run.stats.get("data_sha256"))
    gap = optional_json(COMPUTE_GAP)
    curves = claim_rows(gap, run.stats.get("data_sha256"),
                        {row: training_digest(p, row) for row in (gap or {}).get("training_digests", {})
                         if row in p.row_families})  # the rows `make curves` trained, as they are in params.yaml now
    write_text(REPORTS / "report.md", render(p, run, ablations, left_out, load_claims(), judged=curves))
    say("report", f"{len(run.rows)} rows -> {REPORTS / 'report.md'}")


if __name__ == "__main__":
    main()
