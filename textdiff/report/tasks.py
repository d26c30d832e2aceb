"""The report's infilling and control sections: pure functions of the infill@ROW and control@ROW metrics
(and, for the examples, of their records). No row is named here; what a row can or cannot do comes
from its metrics ("supported", "reason", "handicap")."""

from __future__ import annotations

from textdiff.report.tables import fmt, fmt_ci, markdown_table

INFILL_COLUMNS = [  # (header, metrics key, format)
    ("token accuracy", "token_accuracy", "{:.3f}"),
    ("span BLEU-2", "span_bleu2", "{:.1f}"),
    ("filled gen_ppl", "filled_gen_ppl", "{:.1f}"),
    ("distinct fills", "distinct_fills", "{:.2f}"),
]


def cannot_list(metrics: dict[str, dict], task: str) -> list[str]:
    """``- **row** cannot TASK: why`` for each row whose stage wrote that it cannot."""
    return [f"- **{row}** cannot {task}: {m['reason']}" for row, m in metrics.items() if not m.get("supported")]


def infill_section(metrics: dict[str, dict], examples: dict[str, list[dict]] | None = None) -> str:
    """The infilling table (one row per supporting row, 95 % intervals over templates), the rows that
    cannot infill and why, and one template with each row's first fill."""
    done = {row: m for row, m in metrics.items() if m.get("supported")}
    if not metrics:
        return "No infill stage has run."
    parts = []
    if done:
        first = next(iter(done.values()))
        parts.append(f"{first['templates']} held-out test sentences, each with one middle span or two spans blank "
                     f"({first['blank_share']:.0%} of the tokens on average), filled {first['fills_per_template']} "
                     "times per row with every known token held. Token accuracy: blank positions equal to the "
                     "reference; span BLEU-2: the filled spans against the reference spans (BLEU-4 is 0 on spans "
                     "this short); filled gen_ppl: the judge LM on the whole filled sentence (the held-out "
                     f"sentences themselves: {fmt(first.get('reference_gen_ppl'), '{:.1f}')}); distinct fills: "
                     "(distinct − 1)/(fills − 1) per template, 0 when every fill is the same."
                     + (f" {first['truncated_templates']} of the templates are held-out sentences cut to "
                        "`infill.max_tokens` tokens (too few were that short)." if first.get("truncated_templates")
                        else ""))
        body = [[row + (" †" if m.get("handicap") else "")] + [fmt_ci(m, k, f) for _, k, f in INFILL_COLUMNS]
                for row, m in done.items()]
        parts.append(markdown_table(["row"] + [h for h, _, _ in INFILL_COLUMNS], body))
        handicapped = [f"† {row}: {m['handicap']}." for row, m in done.items() if m.get("handicap")]
        parts += handicapped
    parts += ["\n".join(cannot_list(metrics, "infill"))] if cannot_list(metrics, "infill") else []
    if examples:
        parts.append(infill_example(examples))
    return "\n\n".join(parts)


def infill_example(examples: dict[str, list[dict]]) -> str:
    """The first template, its reference and each row's first fill."""
    rows = {row: recs for row, recs in examples.items() if recs}
    if not rows:
        return ""
    first = next(iter(rows.values()))[0]
    lines = [f"Example: *{first['text']}* (blank: {' / '.join(repr(s) for s in first['reference_spans'])})", ""]
    lines += [f"- {row}: {recs[0]['fills'][0]['text']}" for row, recs in rows.items()]
    return "\n".join(lines)


def control_section(metrics: dict[str, dict], guide_record: dict, judge_record: dict) -> str:
    """The control table in the shape of Diffusion-LM's: per row and label, the independent judge's success
    rate guided and unguided, and the fluency (gen_ppl) and diversity of the guided samples."""
    if not metrics:
        return "No control stage has run."
    if not judge_record.get("supported", False):
        return f"Not run: {judge_record.get('reason', 'no judge')}"
    done = {row: m for row, m in metrics.items() if m.get("supported")}
    parts = [f"Success: the share of samples that the independent judge (logistic regression on MiniLM sentence "
             f"features, held-out accuracy {fmt(judge_record.get('heldout_accuracy'), '{:.3f}')}; majority label "
             f"{fmt(judge_record.get('majority_share'), '{:.3f}')}) assigns to the label steered toward. The "
             f"guidance classifier (bag of token embeddings, held-out accuracy "
             f"{fmt(guide_record.get('heldout_accuracy'), '{:.3f}')}) is never the judge. Unguided: the row's own "
             "samples with the same seed at strength 0. Continuous rows follow the classifier's gradient on x̂0 "
             "(Diffusion-LM) or on the logits (SSD-LM); discrete rows tilt p_θ(x0 | x_t) by its first-order "
             "expansion (DiGress §4.3)."]
    body = []
    for row, m in done.items():
        for label, lm in m["labels"].items():
            body.append([row, label, fmt(m["strength"], "{:g}"), fmt_ci(lm, "success", "{:.2f}"),
                         fmt_ci(lm, "unguided_success", "{:.2f}"), fmt_ci(lm, "gen_ppl", "{:.1f}"),
                         fmt_ci(m["unguided"], "gen_ppl", "{:.1f}"), fmt_ci(lm, "div", "{:.3f}")])
    if body:
        parts.append(markdown_table(["row", "label", "strength", "success", "unguided success", "gen_ppl",
                                     "unguided gen_ppl", "div"], body, numeric_from=2))
    parts += ["\n".join(cannot_list(metrics, "be guided"))] if cannot_list(metrics, "be guided") else []
    return "\n\n".join(parts)
