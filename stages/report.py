"""report: one markdown report over every model with metrics, with samples and plots.

Outputs reports/report.md and reports/plots/*.png.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from stages.common import METRICS, PREPARED, REPORTS, SAMPLES, params, say, stage_main
from textdiff import report as report_package
from textdiff.io import atomic_path, read_json, read_jsonl, write_text
from textdiff.report.tables import fmt, fmt_ci
from textdiff.report.tasks import control_section, infill_section
from textdiff.spaces.autoencoders.evaluation import interpolation_pair

COLUMNS = [  # (header, metrics key, format)
    ("gen_ppl", "gen_ppl", "{:.1f}"),
    ("gen_ppl (per-sample mean)", "gen_ppl_sample_mean", "{:.1f}"),
    ("entropy", "entropy", "{:.2f}"),
    ("div", "div", "{:.3f}"),
    ("mem", "mem", "{:.3f}"),
    ("mauve", "mauve", "{:.3f}"),
    ("held-out ppl", "heldout_ppl", "{:.1f}"),
    ("samples/s", "samples_per_s", "{:.1f}"),
    ("gen tokens/s", "tokens_per_s", "{:.0f}"),
    ("train tokens/s", "train_tokens_per_s", "{:.0f}"),
    ("MFU", "mfu_vs_cpu_peak", "{:.0%}"),
]


LIKELIHOOD_NOTE = (
    "The AR perplexity is exact; each diffusion bound is exp(ELBO nats / the AR's token count), Monte-Carlo over "
    "t (the interval is ± 1.96 Monte-Carlo standard errors of the nats per token), and it also pays for the "
    "canvas's padding, so it can only overstate. The judge's own held-out perplexity is in the header."
)


def likelihood_table(rows: list[dict]) -> str:
    """AR exact perplexity against the diffusion rows' ELBO bounds on the same held-out tokens."""
    head = "| model | held-out ppl | nats/token | kind | tokens | train steps | final train loss | parameters |"
    body = []
    for r in rows:
        if "heldout_ppl_bound" not in r:
            continue
        nats = r.get("heldout_nats_per_token")
        if nats is None and r.get("heldout_ppl"):
            nats = math.log(r["heldout_ppl"])
        body.append(f"| {r['model']} | {'≤ ' if r['heldout_ppl_bound'] != 'exact' and r.get('heldout_ppl') else ''}"
                    f"{fmt_ci(r, 'heldout_ppl', '{:.1f}')} | {fmt(nats, '{:.3f}')}"
                    f"{' ± ' + format(1.96 * r['heldout_nats_per_token_se'], '.3f') if r.get('heldout_nats_per_token_se') else ''}"
                    f" | {r['heldout_ppl_bound']} | "
                    f"{fmt(r.get('heldout_tokens'), '{}')} | {fmt(r.get('steps'), '{}')} | "
                    f"{fmt(r.get('final_loss'), '{:.3f}')} | {fmt(r.get('parameters'), '{:,}')} |")
    return "\n".join([head, "|---|---:|---:|---|---:|---:|---:|---:|", *body])


def likelihood_order(rows: list[dict]) -> str:
    ranked = sorted((r for r in rows if r.get("heldout_ppl")), key=lambda r: r["heldout_ppl"])
    if not ranked:
        return ""
    return "Measured order, lowest first: " + " < ".join(f"{r['model']} ({r['heldout_ppl']:.1f})" for r in ranked) + "."


def load_sweeps(models: list[str]) -> dict[str, dict]:
    out = {}
    for name in models:
        path = METRICS / "sweep" / f"{name}.json"
        if path.exists():
            out[name] = read_json(path)
    return out


def sweep_table(sweeps: dict[str, dict]) -> str:
    if not sweeps:
        return "No steps sweep yet (params `steps_sweep.families`)."
    steps = sorted({pt["steps"] for s in sweeps.values() for pt in s["points"]})
    head = "| model | " + " | ".join(f"{n} steps: gen_ppl / entropy / samples/s" for n in steps) + " |"
    body = []
    for name, sweep in sweeps.items():
        by_steps = {pt["steps"]: pt for pt in sweep["points"]}
        cells = [f"{by_steps[n]['gen_ppl']:.0f} / {by_steps[n]['entropy']:.2f} / {by_steps[n]['samples_per_s']:.1f}"
                 if n in by_steps else "–" for n in steps]
        body.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join([head, "|---|" + "---:|" * len(steps), *body])


def plot_steps(sweeps: dict[str, dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name, sweep in sweeps.items():
        pts = sorted(sweep["points"], key=lambda pt: pt["steps"])
        xs = [pt["steps"] for pt in pts]
        left.plot(xs, [pt["gen_ppl"] for pt in pts], marker="o", label=name)
        right.plot(xs, [pt["entropy"] for pt in pts], marker="o", label=name)
    for ax, label in ((left, "generative perplexity (log)"), (right, "unigram entropy (nats)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("sampling steps")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    left.set_yscale("log")
    left.legend(fontsize=8)
    fig.suptitle("Discrete samplers: quality against steps")
    save_figure(fig, path)


def sweep_samples(sweeps: dict[str, dict], k: int = 2) -> str:
    parts = []
    for name in sweeps:
        records = read_jsonl(SAMPLES / "sweep" / f"{name}.jsonl")
        lines = []
        for steps in sorted({r["steps"] for r in records}):
            texts = [r["text"] for r in records if r["steps"] == steps][:k]
            lines += [f"- {steps} steps: {t if t.strip() else '(empty)'}" for t in texts]
        parts.append(f"**{name}**\n\n" + "\n".join(lines))
    return "\n\n".join(parts)


def space_tables(models: dict) -> str:
    """The cached spaces (size, encode time) and their decoders' held-out accuracy."""
    spaces = {m: read_json(METRICS / "space" / f"{m}.json") for m in models
              if (METRICS / "space" / f"{m}.json").exists()}
    cached = {m: s for m, s in spaces.items() if "features" in s}
    if not cached:
        return "No encoder-space rows in `models`."
    head = ("| row | features | sentences | tokens | at max length | cache on disk | encode wall |\n"
            "|---|---|---:|---:|---:|---:|---:|")
    body = [f"| {m} | {s['features']} | {s['sentences']:,} | {s['tokens']:,} | {s['at_max_length']} | "
            f"{s['cache_bytes'] / 2**20:.1f} MiB | {s['encode_wall_s']:.0f} s |" for m, s in cached.items()]
    parts = ["\n".join([head, *body])]
    decoders = {m: read_json(METRICS / "decoder" / f"{m}.json") for m in cached
                if (METRICS / "decoder" / f"{m}.json").exists()}
    if decoders:
        times = sorted({r["t"] for d in decoders.values() for r in d["held_out"]})
        head = ("| decoder of | " + " | ".join(f"t = {t:g}: token acc / exact" for t in times)
                + " | train steps | train wall | parameters |")
        body = []
        for m, d in decoders.items():
            by_t = {r["t"]: r for r in d["held_out"]}
            cells = [f"{by_t[t]['token_accuracy']:.4f} / {by_t[t]['exact_match']:.3f}" if t in by_t else "–"
                     for t in times]
            body.append(f"| {m} | " + " | ".join(cells) + f" | {d['steps']} | {d['wall_s']:.0f} s | "
                        f"{d['parameters']:,} |")
        n = next(iter(decoders.values()))["held_out"][0]["sentences"]
        parts.append("\n".join([head, "|---|" + "---:|" * (len(times) + 3), *body])
                     + f"\n\nHeld-out: the {n} test sentences, standardised with training statistics; token accuracy "
                       "over [CLS] … [SEP], exact match of the decoded text. t is the row's own diffusion time "
                       "(tan-d: ᾱ(0.05) ≈ 0.67, ᾱ(0.15) ≈ 0.18).")
    return "\n\n".join(parts)


def autoencoder_tables(models: dict) -> str:
    """Held-out reconstruction, latent statistics, the latent datasets and one interpolation per autoencoder."""
    found = {m: read_json(METRICS / "autoencoder" / f"{m}.json") for m in models
             if (METRICS / "autoencoder" / f"{m}.json").exists()}
    trained = {m: a for m, a in found.items() if a.get("autoencoder")}
    if not trained:
        return "No latent rows in `models`."
    head = ("| row | autoencoder | latent | held-out exact | token acc | BLEU | training-set exact / token acc / BLEU "
            "| latent std / norm | KL per sentence | steps | train wall | parameters |\n"
            "|---|---|---|---:|---:|---:|---|---|---:|---:|---:|---:|")
    body = []
    for m, a in trained.items():
        h, t = a["held_out"], a["train_subset"]
        kl = fmt(h["kl_per_sentence"], "{:.1f}") + (f" (β {a['kl_beta']:g})" if a["kl_beta"] is not None else "")
        body.append(f"| {m} | {a['autoencoder']} | {a['num_latents']} × {a['latent_dim']} | {h['exact_match']:.3f} | "
                    f"{h['token_accuracy']:.3f} | {h['bleu']:.1f} | {t['exact_match']:.3f} / "
                    f"{t['token_accuracy']:.3f} / {t['bleu']:.1f} | {h['latent_std']:.2f} / {h['latent_norm']:.2f} | "
                    f"{kl} | {a['steps']} | {a['wall_s']:.0f} s | {a['parameters']:,} |")
    first = next(iter(trained.values()))["held_out"]
    parts = ["\n".join([head, *body]) + f"\n\nHeld-out: {first['sentences']} test sentences, decoded "
             f"{first['method']} from the deterministic latent (the posterior mean for planner); training set: as "
             "many training sentences. Exact match and token accuracy over project-token ids (token accuracy: the "
             "share of reference positions, <eos> included, where the decoding has the same token); corpus BLEU-4 "
             "over words, ×100."]
    spaces = {m: read_json(METRICS / "space" / f"{m}.json") for m in trained
              if (METRICS / "space" / f"{m}.json").exists()}
    if spaces:
        parts.append("| latent dataset | sentences | latents on disk | encode wall (MiniLM + compressor) | "
                     "per-dim std range |\n|---|---:|---:|---:|---|\n" + "\n".join(
                         f"| spaces/{m}/data | {s['sentences']:,} | {s['cache_bytes'] / 2**20:.1f} MiB | "
                         f"{s['encode_wall_s']:.0f} s | {s['std_min']:.2f} – {s['std_max']:.2f} |"
                         for m, s in spaces.items()))
    test = [r["text"] for r in read_jsonl(PREPARED / "test.jsonl")]
    for m, a in trained.items():
        ends = [test[:a["held_out"]["sentences"]][i] for i in interpolation_pair(test[:a["held_out"]["sentences"]])]
        steps = "\n".join(f"{i + 1}. (λ = {step['lambda']:g}) {step['text']}" for i, step in enumerate(a["interpolation"]))
        examples = "\n".join(f"- {e['input']}\n  → {e['output']}" for e in a["held_out"]["examples"][:3])
        parts.append(f"**{m}**: interpolation between two held-out sentences, a = “{ends[0]}” and b = “{ends[1]}”: "
                     f"(1 − λ)·z_a + λ·z_b decoded greedily (λ = 0 and 1 are the reconstructions of a and b):"
                     f"\n\n{steps}\n\nHeld-out reconstructions:\n\n{examples}")
    return "\n\n".join(parts)


def decoder_budget_note(p) -> str:
    """The latent rows' text comes from a decoder trained apart from the diffusion model: say how long, from the
    metrics of this run."""
    rows = [m for m, f in p.models.items() if f == "latent"]
    if not rows:
        return "No latent rows in `models`."
    trained = []
    for m in rows:
        ae, tr = METRICS / "autoencoder" / f"{m}.json", METRICS / "train" / f"{m}.json"
        if ae.exists() and tr.exists():
            trained.append(f"`{m}` {read_json(ae)['steps']} autoencoder steps and {read_json(tr)['steps']} "
                           "diffusion steps")
    return ("Each latent row's autoencoder (its decoder is an autoregressive LM conditioned on the latent) is "
            "trained for that row and counted in its training compute (see Compute): "
            + ("; ".join(trained) or "not trained yet") + ". Part of these rows' gen_ppl and MAUVE is that "
            "decoder: `python benchmarks/latent_controls.py` scores the same decoder reading real latents (its "
            "ceiling) and latents drawn from N(0, I) with no diffusion (its prior), beside the diffusion samples.")


def _versus(rows: dict, a: str, b: str, what: str) -> str:
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


COMPARISONS_FILE = Path(report_package.__file__).with_name("comparisons.yaml")  # which rows to compare: data


def comparisons(section: str, rows: dict) -> list[str]:
    """The measured sentences of one section's pairs in textdiff/report/comparisons.yaml."""
    import yaml

    pairs = yaml.safe_load(COMPARISONS_FILE.read_text(encoding="utf-8"))[section]
    return [_versus(rows, pair["a"], pair["b"], pair["what"]) for pair in pairs]


def continuous_comparison(rows: list[dict]) -> str:
    by_name = {r["model"]: r for r in rows}
    lines = comparisons("continuous", by_name)
    ref = by_name.get("real text (held-out)", {}).get("wordpiece_roundtrip")
    if ref:
        lines.append(f"The encoder-space rows write lowercase WordPiece text, which the judge LM (trained on cased "
                     f"text) reads worse: held-out real text written that way has gen_ppl {ref['gen_ppl']:.0f} and "
                     f"mem {ref['mem']:.3f}, against {by_name['real text (held-out)']['gen_ppl']:.0f} and "
                     f"{by_name['real text (held-out)']['mem']:.3f} as written. Read their gen_ppl and mem against "
                     "that; MAUVE's MiniLM features are uncased, so it compares them fairly.")
    lines.append("A low gen_ppl with a low div is repetition (e.g. runs of commas), not fluency.")
    return "\n\n".join(f"- {line}" for line in lines)


def load_rows(models: list[str]) -> list[dict]:
    rows = []
    ref = METRICS / "eval" / "reference.json"
    if ref.exists():
        rows.append({**read_json(ref), "model": "real text (held-out)"})
    for name in models:
        path = METRICS / "eval" / f"{name}.json"
        if path.exists():
            extra = [METRICS / "train" / f"{name}.json", METRICS / "likelihood" / f"{name}.json"]
            merged = read_json(path)
            for f in extra:
                if f.exists():
                    merged.update(read_json(f))
            sample = METRICS / "sample" / f"{name}.json"
            merged.update(sample_figures(read_json(sample)) if sample.exists() else {})
            rows.append(merged)
    return rows


def row_label(row: dict) -> str:
    return row["model"] + (" ⚠ degenerate" if row.get("degenerate") else "")


def sample_figures(sample: dict) -> dict:
    """What the report reads from a sample stage's metrics (its `steps` is the sampler's, not training's)."""
    out = {k: sample[k] for k in ("nfe", "rounding_error", "rounding_error_ci") if k in sample}
    calls = sample.get("nfe")
    if sample.get("steps") and calls:
        out["cache_speedup"] = sample["steps"] / calls  # > 1 only where the sampler skips network calls
    return out


def table(rows: list[dict]) -> str:
    head = "| model | " + " | ".join(h for h, _, _ in COLUMNS) + " |"
    sep = "|---|" + "---:|" * len(COLUMNS)
    body = ["| " + row_label(r) + " | " + " | ".join(fmt_ci(r, k, f) for _, k, f in COLUMNS) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def degenerate_note(rows: list[dict]) -> str:
    flagged = [r for r in rows if r.get("degenerate")]
    if not flagged:
        return "No row's output is degenerate (mostly empty, one repeated token, or no 4-grams)."
    return ("⚠ Degenerate output, left out of every ranking: " + "; ".join(
        f"`{r['model']}`: {', '.join(r.get('degenerate_reasons') or [])}" for r in flagged)
        + ". A low gen_ppl from such a row is repetition, not fluency.")


ABLATION_COLUMNS = [("gen_ppl", "gen_ppl", "{:.1f}"), ("entropy", "entropy", "{:.2f}"), ("div", "div", "{:.3f}"),
                    ("mem", "mem", "{:.3f}"), ("mauve", "mauve", "{:.3f}"), ("samples/s", "samples_per_s", "{:.1f}"),
                    ("held-out ppl", "heldout_ppl", "{:.1f}"), ("control success", "control_success", "{:.2f}"),
                    ("guided gen_ppl", "control_gen_ppl", "{:.1f}")]


def ablation_tables(groups: dict, left_out: dict[str, str]) -> str:
    """One table per ablation group collected by `python -m pipelines.ablate` on this run's data and base params;
    the groups collected elsewhere are counted, not shown."""
    parts = []
    for name, group in groups.items():
        head = "| run | overrides | " + " | ".join(h for h, _, _ in ABLATION_COLUMNS) + " |"
        sep = "|---|---|" + "---:|" * len(ABLATION_COLUMNS)
        body = ["| " + row_label({**r, "model": r["name"]}) + " | "
                + (", ".join(f"`{o}`" for o in r["overrides"]) or "–") + " | "
                + " | ".join(fmt_ci(r, k, f) for _, k, f in ABLATION_COLUMNS) + " |" for r in group["rows"]]
        parts.append(f"### {name} ({group['model']})\n\n{group['description']}\n\n" + "\n".join([head, sep, *body]))
    if not parts:
        parts.append("No ablations collected on this run's data and params: run `make ablate` (DVC experiments), "
                     "then `dvc repro report`.")
    if left_out:
        parts.append(f"{len(left_out)} collected ablation group(s) left out as not comparable with this run: "
                     + "; ".join(f"`{n}` ({why})" for n, why in left_out.items()) + ".")
    return "\n\n".join(parts)


def load_ablations(p, raw_params: dict, data_sha256: str | None) -> tuple[dict, dict]:
    from textdiff.report.provenance import base_params_digest, comparable_groups

    path = REPORTS / "ablations.json"
    groups = read_json(path) if path.exists() else {}
    kept, left_out = comparable_groups(groups, data_sha256, lambda row: base_params_digest(raw_params, row))
    for name in [n for n, g in kept.items() if g["model"] not in p.models]:
        left_out[name] = f"`{kept.pop(name)['model']}` is not in this run's models"
    return kept, left_out


def plot_quality(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for r in rows:
        x, y = r["gen_ppl"], r["mauve"]
        xci, yci = r.get("gen_ppl_ci") or (x, x), r.get("mauve_ci") or (y, y)
        # a percentile interval need not contain the point (small, skewed samples): clip its arms at 0
        xerr = [[max(0.0, x - xci[0])], [max(0.0, xci[1] - x)]]
        yerr = [[max(0.0, y - yci[0])], [max(0.0, yci[1] - y)]]
        ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="o", ms=5,
                    capsize=3, mfc="none" if r.get("degenerate") else None)
        ax.annotate(row_label(r), (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("generative perplexity under the judge LM (log)")
    ax.set_ylabel("MAUVE vs held-out text")
    ax.set_title("Quality (95% intervals): lower-right is worse")
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def plot_losses(models: list[str], path: Path) -> bool:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    drawn = False
    for name in models:
        csv_path = METRICS / "train" / f"{name}_loss.csv"
        if csv_path.exists():
            with open(csv_path) as f:
                pts = [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(f)]
            if pts:
                ax.plot(*zip(*pts), label=name)
                drawn = True
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title("Training loss (each family's own loss)")
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize=8)
    save_figure(fig, path)
    return drawn


def save_figure(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.tight_layout()
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def samples_section(models: list[str], k: int) -> str:
    parts = []
    sources = [("real text (held-out)", PREPARED / "valid.jsonl")] + [(m, SAMPLES / f"{m}.jsonl") for m in models]
    for name, path in sources:
        if path.exists() and k:
            texts = [r["text"] for r in read_jsonl(path)][:k]
            parts.append(f"### {name}\n\n" + "\n".join(f"{i + 1}. {t if t.strip() else '(empty)'}"
                                                      for i, t in enumerate(texts)))
    return "\n\n".join(parts)


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
    sections = {m: p.row(m) for m in p.models}
    trained = {r["model"]: r for r in rows if "steps" in r}
    parts = [
        shared_or_listed("backbone", {m: f"d{s.model.d_model} × {s.model.n_layers}" for m, s in sections.items()}),
        shared_or_listed("canvas (positions the model sees)", {m: s.model.seq_len for m, s in sections.items()}),
        shared_or_listed("sampling steps", {m: getattr(s.sample, "steps", "left to right")
                                            for m, s in sections.items()}),
        shared_or_listed("diffusion-model training steps", {m: r["steps"] for m, r in trained.items()}),
    ]
    return "; ".join(parts) + "."


def corpus_header(p, stats: dict) -> str:
    corpus = stats.get("corpus") or {}
    files = ", ".join(f"`{f['path']}` (sha256 {f['sha256'][:12]}, {f['bytes']:,} bytes)" for f in corpus.get("files", []))
    name = corpus.get("name", p.data.source)
    return (f"Corpus: **{name}** (source `{p.data.source}`){': ' + files if files else ''}; content hash "
            f"{str(corpus.get('sha256', '–'))[:12]}; prepared-data hash {str(stats.get('data_sha256', '–'))[:12]}. "
            f"Splits: " + ", ".join(f"{k} {v:,}" for k, v in stats["splits"].items()) + f". Seed {p.seed}.")


def judge_header(p, rows: list[dict]) -> str:
    path = METRICS / "judge.json"
    if not path.exists():
        return f"Judge LM for gen_ppl: `{p.evaluate.judge}` (no judge metrics yet)."
    j = read_json(path)
    flops = f", {j['train_flops']:.2e} training FLOPs" if j.get("train_flops") else ""
    what = (f"the judge stage's LM (d{p.judge.model.d_model} × {p.judge.model.n_layers}, {j.get('steps')} steps, "
            f"{j.get('parameters', 0):,} parameters{flops})" if j["kind"] == "trained" else f"`{j['path']}`")
    line = (f"Judge LM for gen_ppl: {what}; its exact held-out perplexity on the test split is "
            f"**{j['heldout_ppl']:.1f}** ({j['tokenizer']} tokens).")
    if j["kind"] == "trained":
        weaker = [r["model"] for r in rows if r.get("heldout_ppl") and r["heldout_ppl"] < j["heldout_ppl"]]
        line += (f" ⚠ The judge is *weaker* than {', '.join(f'`{m}`' for m in weaker)} by held-out perplexity: "
                 "read gen_ppl with care." if weaker else " Every row's held-out perplexity is higher: the judge "
                 "is the stronger model.")
    return line


def canvas_warnings(p) -> list[str]:
    """Rows whose canvas truncates more than 5% of the training texts, with the length that would fit."""
    from textdiff.data.lengths import overflow

    out = []
    tok_path = METRICS / "tokenizer.json"
    counts = read_json(tok_path).get("canvas_lengths", {}).get("counts") if tok_path.exists() else None
    for m in p.models:
        section = p.row(m)
        checks = []
        if counts and section.space == "tokens":
            checks.append(("project tokens", overflow(counts, section.model.seq_len), "model.seq_len"))
        if counts and hasattr(section.space, "decoder"):
            checks.append(("project tokens (decoder)", overflow(counts, section.space.decoder.seq_len),
                           "space.decoder.seq_len"))
        space_path = METRICS / "space" / f"{m}.json"
        if space_path.exists() and "canvas_overflow" in read_json(space_path):
            checks.append(("MiniLM tokens", read_json(space_path)["canvas_overflow"], "space.max_length"))
        for unit, o, key in checks:
            if o["share_longer"] > 0.05:
                out.append(f"- ⚠ `{m}`: its canvas of {o['limit']} {unit} truncates {o['share_longer']:.0%} of the "
                           f"training texts; `rows.{m}.{key}: {o['p95']}` would fit 95% of them ({o['p99']}: 99%).")
    return out


def compute_table(p) -> str:
    """Training compute per row (everything trained for it) against the budget, and sampling cost."""
    from textdiff.training.flops import row_compute

    head = ("| row | training FLOPs (all components) | components | vs budget | frozen-encoder FLOPs | NFE per sample "
            "| sampling FLOPs per sample |\n|---|---:|---|---:|---:|---:|---:|")
    body, budget = [], None
    for m in p.models:
        c = row_compute(METRICS, m)
        budget = c.get("budget_flops") or budget
        sample = read_json(METRICS / "sample" / f"{m}.json") if (METRICS / "sample" / f"{m}.json").exists() else {}
        ratio = f"{c['train_flops'] / c['budget_flops']:.2f}×" if c.get("budget_flops") else "no budget"
        if c.get("budget_flops") and not c.get("within_budget"):
            ratio += " ⚠"
        parts = ", ".join(f"{k} {v:.2e}" for k, v in (c.get("components") or {}).items())
        body.append(f"| {m} | {c['train_flops']:.2e} | {parts} | {ratio} | {fmt(c.get('frozen_encoder_flops'), '{:.2e}')} | "
                    f"{fmt(sample.get('nfe'), '{:.0f}')} | {fmt(sample.get('sample_flops_per_sample'), '{:.2e}')} |")
    note = (f"Budget: {budget:.2e} training FLOPs per row (`budget.train_flops`), forward + backward, counting the "
            "autoencoder and decoder a row trains; ⚠ marks a row more than 10% off it. Frozen MiniLM passes are "
            "counted apart." if budget else "No FLOP budget set (`budget.train_flops: null`): rows train the "
            "steps their params give, so their compute differs as the table shows.")
    return "\n".join([head, *body]) + "\n\n" + note


def task_metrics(models: list[str], task: str) -> dict[str, dict]:
    """Each row's metrics/TASK/ROW.json, for the rows whose stage has run."""
    paths = {m: METRICS / task / f"{m}.json" for m in models}
    return {m: read_json(path) for m, path in paths.items() if path.exists()}


def infill_report(models: list[str]) -> str:
    metrics = task_metrics(models, "infill")
    examples = {m: read_jsonl(SAMPLES / "infill" / f"{m}.jsonl")[:1] for m, record in metrics.items()
                if record.get("supported") and (SAMPLES / "infill" / f"{m}.jsonl").exists()}
    return infill_section(metrics, examples)


def control_report(models: list[str]) -> str:
    records = [METRICS / "control" / f"{n}.json" for n in ("guide_classifier", "judge")]
    guide, judge = (read_json(r) if r.exists() else {} for r in records)
    return control_section(task_metrics(models, "control"), guide, judge)


@stage_main("report")
def main() -> None:
    import yaml

    from textdiff.report.verdict import load_claims, verdict_section

    p = params()
    raw_params = yaml.safe_load(Path("params.yaml").read_text(encoding="utf-8")) or {}
    rows = load_rows(p.models)
    by_name = {r["model"]: r for r in rows}
    model_rows = {r["model"]: r for r in rows if r["model"] in p.models}
    plots = REPORTS / "plots"
    plot_quality(rows, plots / "quality.png")
    plot_losses(p.models, plots / "loss.png")
    sweeps = load_sweeps(p.swept_rows)
    plot_steps(sweeps, plots / "steps.png")
    stats = read_json(PREPARED / "stats.json")
    ablations, left_out = load_ablations(p, raw_params, stats.get("data_sha256"))
    first = next((r for r in rows if "mauve_n" in r), {})
    warnings = canvas_warnings(p)
    lines = [
        "# textdiff report",
        "",
        corpus_header(p, stats),
        "",
        judge_header(p, rows),
        "",
        f"MAUVE on MiniLM sentence features, n = {first.get('mauve_n', '–')} per side. Intervals are 95% "
        f"bootstrap intervals over samples ({first.get('bootstrap_resamples', '–')} resamples; "
        f"{first.get('mauve_bootstrap_resamples', '–')} for MAUVE): percentile intervals for gen_ppl, entropy and "
        "mem; for div and MAUVE, whose resamples are biased low by duplicated samples, the bootstrap spread "
        "re-centred on the point (MAUVE's is conservative: about 3× its seed-to-seed spread, so a real gap may "
        "not separate). Held-out bounds: ± 1.96 Monte-Carlo standard errors.",
        "",
        *([*warnings, ""] if warnings else []),
        "## Verdict",
        "",
        verdict_section(model_rows, ablations, load_claims()),
        "",
        "## Comparison",
        "",
        settings_note(p, rows),
        "",
        table(rows),
        "",
        degenerate_note(rows),
        "",
        "gen_ppl: exp(Σ NLL / Σ tokens) of the samples under the judge (token-weighted); entropy: mean per-sample "
        "unigram entropy of judge tokens (nats); div: ∏ₙ₌₂..₄ unique/total word n-grams; mem: fraction of "
        "generated word 4-grams found in the training split; held-out ppl: exact for AR (an upper bound for "
        "diffusion families); MFU against the CPU fp32 matmul peak recorded with the training metrics.",
        "",
        "![quality](plots/quality.png)",
        "",
        "![training loss](plots/loss.png)",
        "",
        "## Compute",
        "",
        compute_table(p),
        "",
        "## Held-out likelihood",
        "",
        likelihood_table(rows),
        "",
        likelihood_order(rows),
        "",
        LIKELIHOOD_NOTE,
        "",
        "## Continuous spaces: simplex and frozen-encoder features",
        "",
        continuous_comparison(rows),
        "",
        space_tables(p.models),
        "",
        "## Latent diffusion: PLANNER and LD4LG",
        "",
        "Both rows diffuse standardised sentence latents with the shared Gaussian process and decode sampled "
        "latents with their autoencoder's decoder. The autoencoders read frozen MiniLM encodings; their decoders "
        "write the project tokenizer's text.",
        "",
        *(f"- {line}" for line in comparisons("latent", by_name)),
        "- " + decoder_budget_note(p),
        "",
        autoencoder_tables(p.models),
        "",
        "## Sampling steps (discrete families)",
        "",
        f"{next(iter(sweeps.values()))['num_samples'] if sweeps else '–'} samples per point, each row's own sampler "
        "(mdlm: cached ancestral; d3pm: ancestral; sedd: its `sample.method`); the last step always denoises.",
        "",
        sweep_table(sweeps),
        "",
        "![steps](plots/steps.png)",
        "",
        sweep_samples(sweeps),
        "",
        "## Infilling",
        "",
        infill_report(p.models),
        "",
        "## Controllable generation",
        "",
        control_report(p.models),
        "",
        "## Ablations",
        "",
        ablation_tables(ablations, left_out),
        "",
        "## Samples",
        "",
        samples_section(p.models, p.report.samples_per_model),
        "",
    ]
    write_text(REPORTS / "report.md", "\n".join(lines))
    say("report", f"{len(rows)} rows -> {REPORTS / 'report.md'}")


if __name__ == "__main__":
    main()
