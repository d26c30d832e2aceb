"""report: one markdown report over every model with metrics, with samples and plots.

Outputs reports/report.md and reports/plots/*.png.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from stages.common import METRICS, PREPARED, REPORTS, SAMPLES, params, say, stage_main
from textdiff.io import atomic_path, read_json, read_jsonl, write_text
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
    "Same held-out split, tokenizer, canvas length, backbone size and training steps for every row. The AR "
    "perplexity is exact; each diffusion bound is exp(ELBO nats / the AR's token count), Monte-Carlo over t, and "
    "it also pays for the canvas's padding, so it can only overstate. For scale, the SEDD paper (GPT-2 small size, "
    "WikiText2): GPT-2 42.43, SEDD-absorb ≤ 41.84, SEDD-uniform ≤ 50.27, D3PM ≤ 77.28 (absorbing)."
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
                    f"{fmt(r.get('heldout_ppl'), '{:.1f}')} | {fmt(nats, '{:.3f}')} | {r['heldout_ppl_bound']} | "
                    f"{fmt(r.get('heldout_tokens'), '{}')} | {fmt(r.get('steps'), '{}')} | "
                    f"{fmt(r.get('final_loss'), '{:.3f}')} | {fmt(r.get('parameters'), '{:,}')} |")
    return "\n".join([head, "|---|---:|---:|---|---:|---:|---:|---:|", *body])


def likelihood_order(rows: list[dict]) -> str:
    ranked = sorted((r for r in rows if r.get("heldout_ppl")), key=lambda r: r["heldout_ppl"])
    if not ranked:
        return ""
    return "Measured order, lowest first: " + " < ".join(f"{r['model']} ({r['heldout_ppl']:.1f})" for r in ranked) + "."


def load_sweeps(models: dict) -> dict[str, dict]:
    out = {}
    for name in models:
        path = METRICS / "sweep" / f"{name}.json"
        if path.exists():
            out[name] = read_json(path)
    return out


def sweep_table(sweeps: dict[str, dict]) -> str:
    if not sweeps:
        return "No steps sweep yet (params `steps_sweep.models`)."
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


MAUVE_NOISE = 0.02  # MAUVE differences smaller than this are not read as a ranking (256 samples per side)
TENCDM_NOTE = ("TEncDM (ROCStories, BERT-base): MAUVE .762 with encodings against .600 with embeddings. "
               "SSD-LM and TESS report simplex diffusion competitive with AR at GPT-2 scale after long training.")


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
    """The latent rows' text comes from a decoder trained apart from the diffusion model: say how long."""
    rows = [m for m, f in p.models.items() if f == "latent"]
    if not rows:
        return "No latent rows in `models`."
    steps = ", ".join(f"`{m}` {getattr(p, m).space.train.steps}" for m in rows)
    return (f"Compute is not matched here: the autoencoders' decoders are autoregressive LMs conditioned on the "
            f"latent, trained for {steps} steps of {getattr(p, rows[0]).space.train.batch_size} sentences, the AR "
            f"baseline for {p.ar.train.steps}. Part of these rows' gen_ppl and MAUVE is that decoder: "
            "`python benchmarks/latent_controls.py` scores the same decoder reading real latents (its ceiling) and "
            "latents drawn from N(0, I) with no diffusion (its prior), beside the diffusion samples.")


def _versus(rows: dict, a: str, b: str, what: str) -> str:
    """One measured sentence comparing rows a and b on MAUVE and gen_ppl, or why it cannot be said."""
    if a not in rows or b not in rows:
        return f"{what}: not measured (needs both `{a}` and `{b}` in `models`)."
    ra, rb = rows[a], rows[b]
    gap = ra["mauve"] - rb["mauve"]
    verdict = (f"by MAUVE, `{a if gap > 0 else b}` is ahead here" if abs(gap) >= MAUVE_NOISE
               else f"their MAUVE differs by less than {MAUVE_NOISE} (within run-to-run noise), so neither is ahead")
    return (f"{what}: `{a}` MAUVE {ra['mauve']:.3f}, gen_ppl {ra['gen_ppl']:.0f}, div {ra['div']:.3f} against `{b}` "
            f"MAUVE {rb['mauve']:.3f}, gen_ppl {rb['gen_ppl']:.0f}, div {rb['div']:.3f}; {verdict}.")


def continuous_comparison(rows: list[dict]) -> str:
    by_name = {r["model"]: r for r in rows}
    lines = [_versus(by_name, "encoder", "encoder_emb", "Encodings against embeddings (the TEncDM claim)"),
             _versus(by_name, "simplex", "embedding", "Simplex against embedding diffusion")]
    ref = by_name.get("real text (held-out)", {}).get("wordpiece_roundtrip")
    if ref:
        lines.append(f"The encoder-space rows write lowercase WordPiece text, which the judge LM (trained on cased "
                     f"text) reads worse: held-out real text written that way has gen_ppl {ref['gen_ppl']:.0f} and "
                     f"mem {ref['mem']:.3f}, against {by_name['real text (held-out)']['gen_ppl']:.0f} and "
                     f"{by_name['real text (held-out)']['mem']:.3f} as written. Read their gen_ppl and mem against "
                     "that; MAUVE's MiniLM features are uncased, so it compares them fairly.")
    lines.append("A low gen_ppl with a low div is repetition (e.g. runs of commas), not fluency.")
    return "\n\n".join(f"- {line}" for line in lines) + "\n\n" + TENCDM_NOTE


def fmt(value, pattern: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return pattern.format(value)


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
            rows.append(merged)
    return rows


def table(rows: list[dict]) -> str:
    head = "| model | " + " | ".join(h for h, _, _ in COLUMNS) + " |"
    sep = "|---|" + "---:|" * len(COLUMNS)
    body = ["| " + r["model"] + " | " + " | ".join(fmt(r.get(k), f) for _, k, f in COLUMNS) + " |" for r in rows]
    return "\n".join([head, sep, *body])


ABLATION_COLUMNS = [("gen_ppl", "gen_ppl", "{:.1f}"), ("entropy", "entropy", "{:.2f}"), ("div", "div", "{:.3f}"),
                    ("mem", "mem", "{:.3f}"), ("mauve", "mauve", "{:.3f}"), ("samples/s", "samples_per_s", "{:.1f}"),
                    ("held-out ppl", "heldout_ppl", "{:.1f}")]


def ablation_tables(path: Path) -> str:
    """One table per ablation group collected by `python -m pipelines.ablate`."""
    groups = read_json(path) if path.exists() else {}
    if not groups:
        return "No ablations collected yet: run `make ablate` (DVC experiments), then `dvc repro report`."
    parts = []
    for name, group in groups.items():
        head = "| run | overrides | " + " | ".join(h for h, _, _ in ABLATION_COLUMNS) + " |"
        sep = "|---|---|" + "---:|" * len(ABLATION_COLUMNS)
        body = ["| " + r["name"] + " | " + (", ".join(f"`{o}`" for o in r["overrides"]) or "–") + " | "
                + " | ".join(fmt(r.get(k), f) for _, k, f in ABLATION_COLUMNS) + " |" for r in group["rows"]]
        parts.append(f"### {name} ({group['model']})\n\n{group['description']}\n\n" + "\n".join([head, sep, *body]))
    return "\n\n".join(parts)


def plot_quality(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for r in rows:
        ax.scatter(r["gen_ppl"], r["mauve"], s=40)
        ax.annotate(r["model"], (r["gen_ppl"], r["mauve"]), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("generative perplexity under the judge LM (log)")
    ax.set_ylabel("MAUVE vs held-out text")
    ax.set_title("Quality: lower-right is worse")
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


@stage_main("report")
def main() -> None:
    p = params()
    rows = load_rows(p.models)
    plots = REPORTS / "plots"
    plot_quality(rows, plots / "quality.png")
    plot_losses(p.models, plots / "loss.png")
    sweeps = load_sweeps(p.steps_sweep.models)
    plot_steps(sweeps, plots / "steps.png")
    stats = read_json(PREPARED / "stats.json")
    lines = [
        "# textdiff report",
        "",
        f"Corpus: `{p.data.source}`, splits {stats['splits']}. Seed {p.seed}. "
        f"Judge LM for gen_ppl: `{p.evaluate.judge}`. MAUVE on MiniLM sentence features, "
        f"n = {rows[0]['mauve_n'] if rows else '–'} per side.",
        "",
        "## Comparison",
        "",
        table(rows),
        "",
        "gen_ppl: exp(Σ NLL / Σ tokens) of the samples under the judge (token-weighted); entropy: mean per-sample "
        "unigram entropy of judge tokens (nats); div: ∏ₙ₌₂..₄ unique/total word n-grams; mem: fraction of "
        "generated word 4-grams found in the training split; held-out ppl: exact for AR (an upper bound for "
        "diffusion families); MFU against the CPU's 185 GFLOP/s fp32 matmul peak.",
        "",
        "![quality](plots/quality.png)",
        "",
        "![training loss](plots/loss.png)",
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
        "Same backbone, canvas, training steps and 50 sampling steps for `embedding`, `simplex`, `encoder` and "
        "`encoder_emb` (the encoder rows' canvas counts MiniLM WordPiece tokens).",
        "",
        continuous_comparison(rows),
        "",
        space_tables(p.models),
        "",
        "## Latent diffusion: PLANNER and LD4LG",
        "",
        "Both rows diffuse standardised sentence latents with the shared Gaussian process (cosine schedule, "
        "v-prediction, self-conditioning 0.5 by default) and decode sampled latents with their autoencoder's "
        "decoder. The autoencoders read frozen MiniLM encodings; their decoders write the project tokenizer's text.",
        "",
        "- " + _versus({r["model"]: r for r in rows}, "latent_ld4lg", "latent_planner",
                       "LD4LG's compression network against PLANNER's VAE"),
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
        "## Ablations",
        "",
        ablation_tables(REPORTS / "ablations.json"),
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
