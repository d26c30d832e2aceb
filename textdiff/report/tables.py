"""The report's tables: pure functions of metrics dicts (as `textdiff.report.inputs` reads them), each returning
Markdown. No row is named here; a row appears because its metrics exist."""

from __future__ import annotations

import math


def fmt(value, pattern: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return pattern.format(value)


def fmt_ci(row: dict, key: str, pattern: str) -> str:
    """A figure with its 95% interval when the metrics carry one (``KEY_ci``)."""
    cell = fmt(row.get(key), pattern)
    ci = row.get(f"{key}_ci")
    if cell != "–" and ci and ci[0] is not None and ci[0] != ci[1]:
        cell += f" [{pattern.format(ci[0])}, {pattern.format(ci[1])}]"
    return cell


def markdown_table(head: list[str], body: list[list[str]], numeric_from: int = 1) -> str:
    """A Markdown table; columns from ``numeric_from`` on are right-aligned."""
    align = ["---" if i < numeric_from else "---:" for i in range(len(head))]
    return "\n".join("| " + " | ".join(r) + " |" for r in [head, align, *body])


# --------------------------------------------------------------------------- the comparison table

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


def row_label(row: dict) -> str:
    return row["row"] + (" ⚠ degenerate" if row.get("degenerate") else "")


def learned_cell(row: dict) -> str:
    """'yes: …' or 'no: …' with the number that decided it (textdiff.report.learned); '–' for the reference rows."""
    check = row.get("learned_check")
    if check is None:
        return "–"
    verdict = "yes" if check["learned"] else ("no signal" if check["no_signal"] else "no")
    return f"{verdict}: {check['deciding']}"


def comparison_table(rows: list[dict]) -> str:
    """One line per row (the reference rows first) with whether it learned (and the number that decided it) and
    every quality and speed figure with its interval."""
    head = "| model | learned | " + " | ".join(h for h, _, _ in COLUMNS) + " |"
    sep = "|---|---|" + "---:|" * len(COLUMNS)
    body = ["| " + row_label(r) + " | " + learned_cell(r) + " | "
            + " | ".join(fmt_ci(r, k, f) for _, k, f in COLUMNS) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def learning_curve_table(curves: dict[str, list[dict]]) -> str:
    """Each row's learning-curve points (training FLOPs: margin below the positional unigram / probe) and the
    compute from which on it passes both likelihood checks (textdiff.report.learned.first_passed)."""
    from textdiff.report.learned import first_passed

    if not curves:
        return "No row recorded a learning curve (rows without a token likelihood have none: see the training loss)."
    head = "| row | points (FLOPs: margin / probe, nats) | passes from |\n|---|---|---:|"
    body = []
    for name, pts in curves.items():
        cells = ", ".join(f"{q['flops']:.2g}: {q['context_blind_margin']:.2f} / {q['probe_value']:.2f}"
                          for q in sorted(pts, key=lambda q: q["flops"]))
        first = first_passed(pts)
        body.append(f"| {name} | {cells} | {'not within the budget' if first is None else f'{first:.2g} FLOPs'} |")
    return "\n".join([head, *body])


def learned_table(rows: list[dict]) -> str:
    """Every check of every model row: ✓ or ✗ with its number and threshold (textdiff.report.learned)."""
    from textdiff.report.learned import describe

    head = "| row | learned | checks |\n|---|---|---|"
    body = []
    for r in rows:
        check = r.get("learned_check")
        if check is None:
            continue
        marks = "; ".join(("✓ " if c["passed"] else "✗ ") + describe(c) for c in check["checks"])
        body.append(f"| {r['row']} | {'yes' if check['learned'] else 'no'} | {marks} |")
    return "\n".join([head, *body])


def degenerate_note(rows: list[dict]) -> str:
    flagged = [r for r in rows if r.get("degenerate")]
    if not flagged:
        return ("No row's output is degenerate (mostly empty, one repeated token, noise-like, or no 4-grams).\n\n"
                + sample_shares_table(rows))
    return ("⚠ Degenerate output, left out of every ranking (its held-out likelihood, which does not depend on "
            "its samples, still counts as evidence): " + "; ".join(
                f"`{r['row']}`: {', '.join(r.get('degenerate_reasons') or [])}" for r in flagged)
            + ". A low gen_ppl from such a row is repetition, not fluency.\n\n" + sample_shares_table(rows))


def sample_shares_table(rows: list[dict]) -> str:
    """Every row's share of empty, repeated-unit and noise-like samples (textdiff.eval.degenerate)."""
    shown = [r for r in rows if "empty_share" in r]
    body = [[row_label(r), fmt(r.get("empty_share"), "{:.0%}"), fmt(r.get("repeated_token_share"), "{:.0%}"),
             fmt(r.get("noise_like_share"), "{:.0%}")] for r in shown]
    head = ["row", "empty", "one repeated token", "noise-like (judge nats/token ≥ the noise floor's first quartile)"]
    return ("Shares of each row's samples (a row is degenerate when more than half are empty, repeated, or "
            "noise-like):\n\n" + markdown_table(head, body))


# --------------------------------------------------------------------------- likelihood and compute

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
        body.append(f"| {r['row']} | {'≤ ' if r['heldout_ppl_bound'] != 'exact' and r.get('heldout_ppl') else ''}"
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
    return "Measured order, lowest first: " + " < ".join(f"{r['row']} ({r['heldout_ppl']:.1f})" for r in ranked) + "."


def compute_table(compute: dict[str, dict], sample: dict[str, dict]) -> str:
    """Training compute per row (everything trained for it, ``row_compute``) against the budget, and the
    sampling cost from each row's sample metrics."""
    head = ("| row | training FLOPs (all components) | components | vs budget | frozen-encoder FLOPs | NFE per sample "
            "| sampling FLOPs per sample |\n|---|---:|---|---:|---:|---:|---:|")
    body, budget = [], None
    for m, c in compute.items():
        budget = c.get("budget_flops") or budget
        s = sample.get(m, {})
        ratio = f"{c['train_flops'] / c['budget_flops']:.2f}×" if c.get("budget_flops") else "no budget"
        if c.get("budget_flops") and not c.get("within_budget"):
            ratio += " ⚠"
        parts = ", ".join(f"{k} {v:.2e}" for k, v in (c.get("components") or {}).items())
        body.append(f"| {m} | {c['train_flops']:.2e} | {parts} | {ratio} | {fmt(c.get('frozen_encoder_flops'), '{:.2e}')} | "
                    f"{fmt(s.get('nfe'), '{:.0f}')} | {fmt(s.get('sample_flops_per_sample'), '{:.2e}')} |")
    note = (f"Budget: {budget:.2e} training FLOPs per row (`budget.train_flops`), forward + backward, counting the "
            "autoencoder and decoder a row trains; ⚠ marks a row more than 10% off it. Frozen MiniLM passes are "
            "counted apart." if budget else "No FLOP budget set (`budget.train_flops: null`): rows train the "
            "steps their params give, so their compute differs as the table shows.")
    return "\n".join([head, *body]) + "\n\n" + note


# --------------------------------------------------------------------------- the steps sweep

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


def sweep_samples(records: dict[str, list[dict]], k: int = 2) -> str:
    """The first ``k`` texts at each step count of each swept row."""
    parts = []
    for name, rows in records.items():
        lines = []
        for steps in sorted({r["steps"] for r in rows}):
            texts = [r["text"] for r in rows if r["steps"] == steps][:k]
            lines += [f"- {steps} steps: {t if t.strip() else '(empty)'}" for t in texts]
        parts.append(f"**{name}**\n\n" + "\n".join(lines))
    return "\n\n".join(parts)


# --------------------------------------------------------------------------- spaces and autoencoders

FEATURES_WALL = ("Features wall: the seconds to get MiniLM's features of the training split, which is a read of stage "
                 "`features`' cache when that holds these sentences at this canvas (input embeddings: a table "
                 "look-up); MiniLM's own encoding time is in `metrics/features.json`.")


def space_tables(spaces: dict[str, dict], decoders: dict[str, dict]) -> str:
    """The cached spaces (size, encode time) and their decoders' held-out accuracy."""
    cached = {m: s for m, s in spaces.items() if "features" in s}
    if not cached:
        return "No encoder-space rows in `rows`."
    head = ("| row | features | sentences | tokens | at max length | cache on disk | features wall |\n"
            "|---|---|---:|---:|---:|---:|---:|")
    body = [f"| {m} | {s['features']} | {s['sentences']:,} | {s['tokens']:,} | {s['at_max_length']} | "
            f"{s['cache_bytes'] / 2**20:.1f} MiB | {s['encode_wall_s']:.0f} s |" for m, s in cached.items()]
    parts = ["\n".join([head, *body]) + f"\n\n{FEATURES_WALL}"]
    decoders = {m: d for m, d in decoders.items() if m in cached}
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


def autoencoder_tables(autoencoders: dict[str, dict], spaces: dict[str, dict], test_texts: list[str]) -> str:
    """Held-out reconstruction, latent statistics, the latent datasets and one interpolation per autoencoder."""
    from textdiff.spaces.autoencoders.evaluation import interpolation_pair

    trained = {m: a for m, a in autoencoders.items() if a.get("autoencoder")}
    if not trained:
        return "No latent rows in `rows`."
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
    latent_spaces = {m: spaces[m] for m in trained if m in spaces}
    if latent_spaces:
        parts.append("| latent dataset | sentences | latents on disk | encode wall (features + compressor) | "
                     "per-dim std range |\n|---|---:|---:|---:|---|\n" + "\n".join(
                         f"| spaces/{m}/data | {s['sentences']:,} | {s['cache_bytes'] / 2**20:.1f} MiB | "
                         f"{s['encode_wall_s']:.0f} s | {s['std_min']:.2f} – {s['std_max']:.2f} |"
                         for m, s in latent_spaces.items()) + f"\n\n{FEATURES_WALL}")
    for m, a in trained.items():
        held_out = test_texts[:a["held_out"]["sentences"]]
        ends = [held_out[i] for i in interpolation_pair(held_out)]
        steps = "\n".join(f"{i + 1}. (λ = {step['lambda']:g}) {step['text']}" for i, step in enumerate(a["interpolation"]))
        examples = "\n".join(f"- {e['input']}\n  → {e['output']}" for e in a["held_out"]["examples"][:3])
        parts.append(f"**{m}**: interpolation between two held-out sentences, a = “{ends[0]}” and b = “{ends[1]}”: "
                     f"(1 − λ)·z_a + λ·z_b decoded greedily (λ = 0 and 1 are the reconstructions of a and b):"
                     f"\n\n{steps}\n\nHeld-out reconstructions:\n\n{examples}")
    return "\n\n".join(parts)


# --------------------------------------------------------------------------- ablations and samples

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
        body = ["| " + row_label({**r, "row": r["name"]}) + " | "
                + (", ".join(f"`{o}`" for o in r["overrides"]) or "–") + " | "
                + " | ".join(fmt_ci(r, k, f) for _, k, f in ABLATION_COLUMNS) + " |" for r in group["rows"]]
        parts.append(f"### {name} ({group['row']})\n\n{group['description']}\n\n" + "\n".join([head, sep, *body]))
    if not parts:
        parts.append("No ablations collected on this run's data and params: run `make ablate` (DVC experiments), "
                     "then `dvc repro report`.")
    if left_out:
        parts.append(f"{len(left_out)} collected ablation group(s) left out as not comparable with this run: "
                     + "; ".join(f"`{n}` ({why})" for n, why in left_out.items()) + ".")
    return "\n\n".join(parts)


def samples_section(texts: dict[str, list[str]], k: int) -> str:
    """The first ``k`` texts of each source (the held-out text, then each row's samples)."""
    parts = []
    for name, source in texts.items():
        if k:
            parts.append(f"### {name}\n\n" + "\n".join(f"{i + 1}. {t if t.strip() else '(empty)'}"
                                                      for i, t in enumerate(source[:k])))
    return "\n\n".join(parts)
