"""Corpus BLEU (Papineni et al. 2002) over words, one reference per hypothesis, no smoothing.

BLEU = BP · exp(Σ_n (1/N) log p_n), n = 1..N (N = 4 by default), where p_n is the clipped n-gram
precision summed over the corpus and BP = exp(1 − r/c) when the hypotheses are shorter (c)
than the references (r), else 1. Reported ×100, as papers do. The per-pair counts
(``bleu_statistics``) sum over a corpus, so a bootstrap re-weights them instead of recounting.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from textdiff.eval.ngrams import ngrams, words


def bleu_statistics(hypothesis: str, reference: str, max_order: int = 4) -> np.ndarray:
    """[matched_1..N, total_1..N, hypothesis words, reference words] of one pair."""
    h, r = words(hypothesis), words(reference)
    matched, total = [], []
    for n in range(1, max_order + 1):
        h_counts, r_counts = Counter(ngrams(h, n)), Counter(ngrams(r, n))
        matched.append(sum(min(c, r_counts[g]) for g, c in h_counts.items()))
        total.append(sum(h_counts.values()))
    return np.array(matched + total + [len(h), len(r)], dtype=np.float64)


def bleu_from_statistics(sums: np.ndarray, max_order: int = 4) -> float:
    """Corpus BLEU ×100 from ``bleu_statistics`` summed over the corpus."""
    matched, total = sums[:max_order], sums[max_order:2 * max_order]
    hyp_len, ref_len = sums[2 * max_order], sums[2 * max_order + 1]
    if hyp_len == 0 or min(matched) == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matched, total)) / max_order
    brevity = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return 100 * brevity * math.exp(log_precision)


def corpus_bleu(hypotheses: list[str], references: list[str], max_order: int = 4) -> float:
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    sums = sum((bleu_statistics(h, r, max_order) for h, r in zip(hypotheses, references)),
               np.zeros(2 * max_order + 2))
    return bleu_from_statistics(sums, max_order)
