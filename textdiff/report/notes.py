"""The report's sentences: headers, warnings and the measured comparisons, as pure functions of this run's
params and metrics. Which pairs of rows are compared is data (``comparisons.yaml`` beside this module)."""

from __future__ import annotations

from pathlib import Path

import yaml

from textdiff.report.inputs import REFERENCE_ROW
from textdiff.report.tables import fmt

COMPARISONS_FILE = Path(__file__).with_name("comparisons.yaml")


def corpus_header(p, stats: dict) -> str:
    corpus = stats.get("corpus") or {}
    files = ", ".join(f"`{f['path']}` (sha256 {f['sha256'][:12]}, {f['bytes']:,} bytes)" for f in corpus.get("files", []))
    name = corpus.get("name", p.data.source)
    return (f"Corpus: **{name}** (source `{p.data.source}`){': ' + files if files else ''}; content hash "
            f"{str(corpus.get('sha256', '–'))[:12]}; prepared-data hash {str(stats.get('data_sha256', '–'))[:12]}. "
            f"Splits: " + ", ".join(f"{k} {v:,}" for k, v in stats["splits"].items()) + f". Seed {p.seed}.")


def judge_header(p, judge: dict | None, rows: list[dict]) -> str:
    """Which LM scores gen_ppl, its own held-out perplexity, and a warning when a row beats it."""
    if judge is None:
        return f"Judge LM for gen_ppl: `{p.evaluate.judge}` (no judge metrics yet)."
    flops = f", {judge['train_flops']:.2e} training FLOPs" if judge.get("train_flops") else ""
    what = (f"the judge stage's LM (d{p.judge.model.d_model} × {p.judge.model.n_layers}, {judge.get('steps')} steps, "
            f"{judge.get('parameters', 0):,} parameters{flops})" if judge["kind"] == "trained" else f"`{judge['path']}`")
    line = (f"Judge LM for gen_ppl: {what}; its exact held-out perplexity on the test split is "
            f"**{judge['heldout_ppl']:.1f}** ({judge['tokenizer']} tokens).")
    if judge["kind"] == "trained":
        weaker = [r["row"] for r in rows if r.get("heldout_ppl") and r["heldout_ppl"] < judge["heldout_ppl"]]
        line += (f" ⚠ The judge is *weaker* than {', '.join(f'`{m}`' for m in weaker)} by held-out perplexity: "
                 "read gen_ppl with care." if weaker else " Every row's held-out perplexity is higher: the judge "
                 "is the stronger model.")
    return line


def mauve_note(rows: list[dict]) -> str:
    first = next((r for r in rows if "mauve_n" in r), {})
    sizes: dict[int, list[str]] = {}  # each row's MAUVE n: min(its texts, the references)
    for r in rows:
        if "mauve_n" in r:
            sizes.setdefault(r["mauve_n"], []).append(r["row"])
    n = "; ".join(f"{size} for {', '.join(f'`{m}`' for m in models) if len(sizes) > 1 else 'every row'}"
                  for size, models in sorted(sizes.items(), reverse=True)) or "–"
    return (f"MAUVE on MiniLM sentence features, n = min(texts, references): {n}. Intervals are 95% "
            f"bootstrap intervals over samples ({first.get('bootstrap_resamples', '–')} resamples; "
            f"{first.get('mauve_bootstrap_resamples', '–')} for MAUVE): percentile intervals for gen_ppl, entropy and "
            "mem; for div and MAUVE, whose resamples are biased low by duplicated samples, the bootstrap spread "
            "re-centred on the point (MAUVE's is conservative: at n = 128 its bootstrap sd was 2.0–3.9× MAUVE's sd over "
            "new sets of samples, and 16 of 16 intervals held the mean, benchmarks/results/mauve_interval.json; "
            "a real gap may not separate). Held-out likelihoods: ± 1.96 standard errors from a bootstrap over the held-out sentences, "
            "combined with the Monte-Carlo error over t for a bound.")


def canvas_warnings(p, canvas_counts: dict | None, spaces: dict[str, dict]) -> list[str]:
    """Rows whose canvas truncates more than 5% of the training texts, with the length that would fit."""
    from textdiff.data.lengths import overflow
    from textdiff.spaces.registry import kind_of

    out = []
    for m in p.row_families:
        section = p.row(m)
        kind, checks = kind_of(section.space), []
        if canvas_counts and kind == "tokens":
            checks.append(("project tokens", overflow(canvas_counts, section.model.seq_len), "model.seq_len"))
        if canvas_counts and kind == "latent":  # the autoencoder's decoder writes project tokens
            checks.append(("project tokens (decoder)", overflow(canvas_counts, section.space.decoder.seq_len),
                           "space.decoder.seq_len"))
        if "canvas_overflow" in spaces.get(m, {}):
            checks.append(("MiniLM tokens", spaces[m]["canvas_overflow"], "space.max_length"))
        for unit, o, key in checks:
            if o["share_longer"] > 0.05:
                out.append(f"- ⚠ `{m}`: its canvas of {o['limit']} {unit} truncates {o['share_longer']:.0%} of the "
                           f"training texts; `rows.{m}.{key}: {o['p95']}` would fit 95% of them ({o['p99']}: 99%).")
    return out


def shared_or_listed(label: str, values: dict[str, object]) -> str:
    """"label: X for every row" when all rows agree, else each row's value: sentences computed from params."""
    if not values:
        return f"{label}: –"
    distinct = set(map(str, values.values()))
    if len(distinct) == 1:
        return f"{label}: {next(iter(distinct))} for every row"
    return f"{label} by row: " + ", ".join(f"`{r}` {v}" for r, v in values.items())


def settings_note(p, rows: list[dict]) -> str:
    """What the rows share and where they differ, read from this run's params and metrics."""
    sections = {m: p.row(m) for m in p.row_families}
    trained = {r["row"]: r for r in rows if "steps" in r}
    parts = [
        shared_or_listed("backbone", {m: f"d{s.model.d_model} × {s.model.n_layers}" for m, s in sections.items()}),
        shared_or_listed("canvas (positions the model sees)", {m: s.model.seq_len for m, s in sections.items()}),
        shared_or_listed("sampling steps", {m: getattr(s.sample, "steps", "left to right")
                                            for m, s in sections.items()}),
        shared_or_listed("diffusion-model training steps", {m: r["steps"] for m, r in trained.items()}),
    ]
    return "; ".join(parts) + "."


def decoder_budget_note(p, autoencoders: dict[str, dict], train: dict[str, dict]) -> str:
    """The latent rows' text comes from a decoder trained apart from the diffusion model: say how long, from the
    metrics of this run."""
    rows = [m for m, f in p.row_families.items() if f == "latent"]
    if not rows:
        return "No latent rows in `rows`."
    trained = [f"`{m}` {autoencoders[m]['steps']} autoencoder steps and {train[m]['steps']} diffusion steps"
               for m in rows if m in autoencoders and m in train]
    return ("Each latent row's autoencoder (its decoder is an autoregressive LM conditioned on the latent) is "
            "trained for that row and counted in its training compute (see Compute): "
            + ("; ".join(trained) or "not trained yet") + ". Part of these rows' gen_ppl and MAUVE is that "
            "decoder: `python benchmarks/latent_controls.py` scores the same decoder reading real latents (its "
            "ceiling) and latents drawn from N(0, I) with no diffusion (its prior), beside the diffusion samples.")


def versus(rows: dict, a: str, b: str, what: str) -> str:
    """One measured sentence comparing rows a and b on MAUVE (with intervals), or why it cannot be said."""
    from textdiff.report.verdict import check

    if a not in rows or b not in rows:
        return f"{what}: not measured (needs both `{a}` and `{b}` in `rows`)."
    outcome, numbers = check({"a": a, "b": b, "metric": "mauve", "relation": "higher"}, rows, {})
    verdict = {"reproduced": f"`{a}` is ahead", "refuted": f"`{b}` is ahead"}.get(
        outcome, "the intervals overlap or a row is degenerate, so neither is ahead")
    return (f"{what}: {numbers}; gen_ppl {fmt(rows[a].get('gen_ppl'), '{:.0f}')} vs "
            f"{fmt(rows[b].get('gen_ppl'), '{:.0f}')}, div {fmt(rows[a].get('div'), '{:.3f}')} vs "
            f"{fmt(rows[b].get('div'), '{:.3f}')}; {verdict}.")


def comparisons(section: str, rows: dict, path: Path = COMPARISONS_FILE) -> list[str]:
    """The measured sentences of one section's pairs in the comparisons file."""
    pairs = yaml.safe_load(path.read_text(encoding="utf-8"))[section]
    return [versus(rows, pair["a"], pair["b"], pair["what"]) for pair in pairs]


def continuous_comparison(rows: list[dict]) -> str:
    by_name = {r["row"]: r for r in rows}
    lines = comparisons("continuous", by_name)
    reference = by_name.get(REFERENCE_ROW, {})
    roundtrip = reference.get("wordpiece_roundtrip")
    if roundtrip:
        lines.append(f"The encoder-space rows write lowercase WordPiece text, which the judge LM (trained on cased "
                     f"text) reads worse: held-out real text written that way has gen_ppl {roundtrip['gen_ppl']:.0f} "
                     f"and mem {roundtrip['mem']:.3f}, against {reference['gen_ppl']:.0f} and "
                     f"{reference['mem']:.3f} as written. Read their gen_ppl and mem against "
                     "that; MAUVE's MiniLM features are uncased, so it compares them fairly.")
    lines.append("A low gen_ppl with a low div is repetition (e.g. runs of commas), not fluency.")
    return "\n\n".join(f"- {line}" for line in lines)
