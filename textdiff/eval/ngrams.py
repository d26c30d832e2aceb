"""Diversity and memorisation over word n-grams (words and punctuation marks as tokens)."""

from __future__ import annotations

import math
import re
from collections import Counter

_TOKEN = re.compile(r"\w+|[^\w\s]")


def words(text: str) -> list[str]:
    return _TOKEN.findall(text)


def ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def diversity(texts: list[str], orders: tuple[int, ...] = (2, 3, 4)) -> float:
    """∏ₙ unique n-grams / total n-grams, pooled over all texts (1 = no repetition)."""
    tokenised = [words(t) for t in texts]
    score = 1.0
    for n in orders:
        grams = [g for toks in tokenised for g in ngrams(toks, n)]
        if not grams:
            return float("nan")
        score *= len(set(grams)) / len(grams)
    return score


def memorisation(texts: list[str], train_texts: list[str], n: int = 4) -> float:
    """Fraction of generated n-grams (with multiplicity) that occur in the training texts."""
    train = {g for t in train_texts for g in ngrams(words(t), n)}
    grams = [g for t in texts for g in ngrams(words(t), n)]
    if not grams:
        return float("nan")
    return sum(g in train for g in grams) / len(grams)


def unigram_entropy(token_ids: list[int]) -> float:
    """Entropy (nats) of the token distribution within one sample."""
    if not token_ids:
        return 0.0
    counts = Counter(token_ids)
    total = len(token_ids)
    return -sum(c / total * math.log(c / total) for c in counts.values())
