"""Corpus BLEU (Papineni et al. 2002) over words, one reference per hypothesis, no smoothing.

BLEU = BP · exp(Σ_n ¼ log p_n), n = 1..4, where p_n is the clipped n-gram precision
summed over the corpus and BP = exp(1 − r/c) when the hypotheses are shorter (c)
than the references (r), else 1. Reported ×100, as papers do.
"""

from __future__ import annotations

import math
from collections import Counter

from textdiff.eval.ngrams import ngrams, words


def corpus_bleu(hypotheses: list[str], references: list[str], max_order: int = 4) -> float:
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    matched, total = [0] * max_order, [0] * max_order
    hyp_len = ref_len = 0
    for hyp, ref in zip(hypotheses, references):
        h, r = words(hyp), words(ref)
        hyp_len, ref_len = hyp_len + len(h), ref_len + len(r)
        for n in range(1, max_order + 1):
            h_counts, r_counts = Counter(ngrams(h, n)), Counter(ngrams(r, n))
            matched[n - 1] += sum(min(c, r_counts[g]) for g, c in h_counts.items())
            total[n - 1] += sum(h_counts.values())
    if hyp_len == 0 or min(matched) == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matched, total)) / max_order
    brevity = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return 100 * brevity * math.exp(log_precision)
