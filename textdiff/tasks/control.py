"""Controllable generation: samples guided toward a label, and how often an independent judge agrees.

``guided_texts`` samples a row through its family's ``draw_canvas`` with a ``Guidance``;
``control_metrics`` scores one label's guided samples against the row's unguided ones: the share the
independent judge (textdiff.tasks.attribute_judge) assigns to the label, with and without guidance,
and the fluency (judge LM perplexity) and diversity of the guided text, each with an interval.
"""

from __future__ import annotations

import numpy as np

from textdiff.eval.intervals import CI_LEVEL, mean_interval, sample_intervals
from textdiff.eval.judge import perplexity_scores
from textdiff.eval.ngrams import diversity


def guided_texts(draw, model, tokenizer, num: int, guide, *, batch_size: int, seed: int, device) -> list[str]:
    """``num`` texts from ``draw(num, generator, guide=…)`` (textdiff.families.canvas_drawer) in batches, one
    generator seeded by ``seed`` as every family's ``sample_texts`` (textdiff.sampling.batched), so with the
    guidance off they are the row's ordinary samples."""
    from textdiff.sampling.batched import seeded_texts

    texts, _ = seeded_texts(model, lambda n, gen: [model.vocab.strip(row) for row in draw(n, gen, guide=guide).tolist()],
                            tokenizer, num, batch_size, seed=seed, device=device)
    return texts


def control_metrics(label: str, texts: list[str], predicted: list[str], unguided_predicted: list[str], lm_judge, *,
                    resamples: int, seed: int, level: float = CI_LEVEL) -> dict:
    """One label's success rate (the independent judge says ``label``) guided and unguided, and the guided
    texts' gen_ppl under the judge LM and div, with bootstrap intervals."""
    success = np.array([p == label for p in predicted], dtype=float)
    baseline = np.array([p == label for p in unguided_predicted], dtype=float)
    ppl, per_text = perplexity_scores(lm_judge, texts)
    intervals = sample_intervals(texts, per_text["nll"], per_text["counts"], per_text["entropy"],
                                 resamples=resamples, seed=seed, level=level)
    return {
        "label": label, "num_samples": len(texts),
        "success": float(success.mean()), "success_ci": mean_interval(success, resamples, seed, level),
        "unguided_success": float(baseline.mean()),
        "unguided_success_ci": mean_interval(baseline, resamples, seed, level),
        "gen_ppl": ppl["gen_ppl"], "gen_ppl_ci": intervals["gen_ppl_ci"],
        "div": diversity(texts), "div_ci": intervals["div_ci"],
        "judge_nll": float(per_text["nll"].sum()), "judge_tokens": int(per_text["counts"].sum()),
    }


def majority_share(labels: list[str]) -> float:
    """The share of the commonest label: the accuracy of always guessing it."""
    return max(labels.count(lb) for lb in set(labels)) / len(labels)


def pooled_gen_ppl(per_label: dict[str, dict]) -> float:
    """exp(Σ NLL / Σ tokens) of every label's guided samples together."""
    import math

    return math.exp(sum(m["judge_nll"] for m in per_label.values()) / sum(m["judge_tokens"] for m in per_label.values()))


def labelled(records: list[dict]) -> tuple[list[str], list[str]]:
    """The texts that carry a label, and their labels (``prepare`` keeps ``label`` from data.label_column)."""
    kept = [r for r in records if r.get("label") is not None]
    return [r["text"] for r in kept], [str(r["label"]) for r in kept]


def no_labels_reason(labels: list[str], label_column, test_labels: list[str] | None = None) -> str | None:
    """Why control cannot run on this corpus (None when it can): no labels, one label, or (given) none in
    the test split, where the classifiers' held-out accuracy is measured."""
    if not labels:
        return (f"the corpus has no labels (data.label_column is {label_column!r} and no training record has one): "
                f"control needs a label column")
    if len(set(labels)) < 2:
        return f"the training split has one label only ({labels[0]!r}): control needs two or more"
    if test_labels is not None and not test_labels:
        return "the test split has no labelled text: the classifiers' held-out accuracy cannot be measured"
    return None


def steered_labels(requested: list[str] | None, labels: list[str]) -> list[str]:
    """``control.labels``, checked against the training split's labels, or all of them."""
    from textdiff.params.base import ParamsError

    known = sorted(set(labels))
    if requested is None:
        return known
    unknown = [lb for lb in requested if lb not in known]
    if unknown:
        raise ParamsError(f"control.labels: unknown label {unknown[0]!r}; the training split's labels are {known}")
    return list(requested)
