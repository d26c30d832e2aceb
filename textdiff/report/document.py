"""The whole report as one Markdown string: a pure function of this run's params and metrics (a ``RunMetrics``),
the ablation groups that are comparable with it, and the claims to judge. ``stages/report.py`` reads the files,
draws the plots and writes what ``render`` returns."""

from __future__ import annotations

from textdiff.report.inputs import RunMetrics
from textdiff.report.notes import (canvas_warnings, comparisons, continuous_comparison, corpus_header,
                                   decoder_budget_note, judge_header, mauve_note, settings_note)
from textdiff.report.learned import learned_check
from textdiff.report.tables import (ablation_tables, autoencoder_tables, comparison_table, compute_table,
                                    degenerate_note, learned_table, learning_curve_table, likelihood_order,
                                    likelihood_table,
                                    samples_section, space_tables, sweep_samples, sweep_table)
from textdiff.report.tasks import control_section, infill_section
from textdiff.report.verdict import verdict_section

LIKELIHOOD_NOTE = (
    "The AR perplexity is exact given the held-out sentences; each diffusion bound is exp(ELBO nats / the AR's "
    "token count), Monte-Carlo over t, and it also pays for the canvas's padding, so it can only overstate. Every "
    "interval (± 1.96 standard errors of the nats per token) includes the data: a bootstrap over the held-out "
    "sentences, combined with the Monte-Carlo error over t for a bound. The judge's own held-out perplexity is in "
    "the header."
)

METRIC_DEFINITIONS = (
    "gen_ppl: exp(Σ NLL / Σ tokens) of the samples under the judge (token-weighted); entropy: mean per-sample "
    "unigram entropy of judge tokens (nats); div: ∏ₙ₌₂..₄ unique/total word n-grams; mem: fraction of "
    "generated word 4-grams found in the training split; held-out ppl: exact for AR (an upper bound for "
    "diffusion families); MFU against the dense matmul peak measured on the training machine, in the run's "
    "precision, when the stage ran (recorded with the training metrics)."
)

LATENT_INTRO = (
    "Both rows diffuse standardised sentence latents with the shared Gaussian process and decode sampled "
    "latents with their autoencoder's decoder. The autoencoders read frozen MiniLM encodings; their decoders "
    "write the project tokenizer's text."
)


def comparable_ablations(p, raw_params: dict, groups: dict[str, dict],
                         data_sha256: str | None) -> tuple[dict, dict[str, str]]:
    """The collected ablation groups that were run on this run's data and base params and whose row is in it;
    the rest by name, with why each was left out."""
    from textdiff.report.provenance import base_params_digest, comparable_groups

    kept, left_out = comparable_groups(groups, data_sha256, lambda row: base_params_digest(raw_params, row))
    for name in [n for n, g in kept.items() if g["row"] not in p.row_families]:
        left_out[name] = f"`{kept.pop(name)['row']}` is not in this run's rows"
    return kept, left_out


def sweep_intro(run: RunMetrics) -> str:
    n = next(iter(run.sweeps.values()))["num_samples"] if run.sweeps else "–"
    return (f"{n} samples per point, each row's own sampler (mdlm: cached ancestral; d3pm: ancestral; sedd: its "
            "`sample.method`); the last step always denoises.")


LEARNED_NOTE = (
    "A row has learned when it beats what ignores context (textdiff/report/learned.py): a row with a token "
    "likelihood is below the positional unigram (per-position token frequencies of the training split, smoothed "
    "on the validation split, on the row's own footing: the canvas with its padding for a diffusion bound, the "
    "text's tokens for AR) by 1.0 nat/token (AR), 0.5 (absorbing graphs) or 0.25 (uniform graphs), and its "
    "context probe moves: masked NLL with 5% of the sentence masked ≥ 1.5 nats below that with all of it masked "
    "(absorbing), NLL ≥ 0.5 nats higher when the uncorrupted context is another sentence's (uniform; for AR, "
    "after another sentence's first half, reported but not a gate: its exact likelihood against the best "
    "context-blind model on the same tokens already shows its use of context); a latent row's autoencoder reconstructs ≥ 60% of held-out tokens (greedy); "
    "an encoder row's decoder reads ≥ 90% of tokens at t = 0; and every row's samples are not degenerate and "
    "their gen_ppl and MAUVE intervals lie clear of the noise floor's (text drawn from the positional unigram, "
    "scored as a row: \"no signal\" otherwise). A claim compares only rows that learned."
)


def with_learned_checks(run: RunMetrics, row_names) -> list[dict]:
    """The run's rows, each model row with its ``learned_check`` (textdiff.report.learned) added."""
    floor = run.noise_floor
    return [{**r, "learned_check": learned_check(r, floor, run.autoencoders.get(r["row"]),
                                                 run.decoders.get(r["row"]))} if r["row"] in row_names else r
            for r in run.rows]


def render(p, run: RunMetrics, ablations: dict, left_out: dict[str, str], claims: list[dict],
           judged: list[dict] = ()) -> str:
    """The report's Markdown, section by section; the plots are linked from ``plots/``."""
    rows, by_name = with_learned_checks(run, p.row_families), run.by_name()
    model_rows = {r["row"]: r for r in rows if r["row"] in p.row_families}
    warnings = canvas_warnings(p, run.canvas_counts, run.spaces)
    lines = [
        "# textdiff report", "",
        corpus_header(p, run.stats), "",
        judge_header(p, run.judge, rows), "",
        mauve_note(rows), "",
        *([*warnings, ""] if warnings else []),
        "## Verdict", "",
        verdict_section(model_rows, ablations, claims, judged=judged), "",
        "## Comparison", "",
        settings_note(p, rows), "",
        comparison_table(rows), "",
        degenerate_note(rows), "",
        "### Has each row learned?", "",
        learned_table(rows), "",
        LEARNED_NOTE, "",
        "### Learning curves", "",
        "Measured by each training stage on the first 256 test sentences (2 draws of t per sentence) at 1/8, 1/4, "
        "1/2 and all of its budget; the last point is on the same slice as the comparison's probe, so the two "
        "figures differ a little.", "",
        learning_curve_table(run.learning_curves), "",
        "![learning curves](plots/learning.png)", "",
        METRIC_DEFINITIONS, "",
        "![quality](plots/quality.png)", "",
        "![training loss](plots/loss.png)", "",
        "## Compute", "",
        compute_table(run.compute, run.sample), "",
        "## Held-out likelihood", "",
        likelihood_table(rows), "",
        likelihood_order(rows), "",
        LIKELIHOOD_NOTE, "",
        "## Continuous spaces: simplex and frozen-encoder features", "",
        continuous_comparison(rows), "",
        space_tables(run.spaces, run.decoders), "",
        "## Latent diffusion: PLANNER and LD4LG", "",
        LATENT_INTRO, "",
        *(f"- {line}" for line in comparisons("latent", by_name)),
        "- " + decoder_budget_note(p, run.autoencoders, run.train), "",
        autoencoder_tables(run.autoencoders, run.spaces, run.test_texts), "",
        "## Sampling steps (discrete families)", "",
        sweep_intro(run), "",
        sweep_table(run.sweeps), "",
        "![steps](plots/steps.png)", "",
        sweep_samples(run.sweep_records), "",
        "## Infilling", "",
        infill_section(run.infill, run.infill_examples), "",
        "## Controllable generation", "",
        control_section(run.control, run.guide_classifier, run.control_judge), "",
        "## Ablations", "",
        ablation_tables(ablations, left_out), "",
        "## Samples", "",
        samples_section(run.texts, p.report.samples_per_model), "",
    ]
    return "\n".join(lines)
