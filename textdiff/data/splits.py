"""Deterministic seeded train / valid / test splits."""

from __future__ import annotations

import random


def split_records(records: list[dict], valid_fraction: float, test_fraction: float,
                  seed: int) -> dict[str, list[dict]]:
    """Shuffle with ``seed`` and cut into train / valid / test.

    Raises ValueError naming the param when a split would be empty.
    """
    n = len(records)
    n_valid = round(n * valid_fraction)
    n_test = round(n * test_fraction)
    for name, count in (("data.valid_fraction", n_valid), ("data.test_fraction", n_test)):
        if count == 0:
            raise ValueError(f"{name}: leaves no examples from a corpus of {n} (raise the fraction or the corpus)")
    if n - n_valid - n_test < 1:
        raise ValueError(f"data.valid_fraction + data.test_fraction leave no training data from {n} examples")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    shuffled = [records[i] for i in order]
    return {
        "test": shuffled[:n_test],
        "valid": shuffled[n_test:n_test + n_valid],
        "train": shuffled[n_test + n_valid:],
    }
