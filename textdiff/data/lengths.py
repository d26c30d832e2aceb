"""How many texts fit a canvas: length distributions and the share that a canvas truncates."""

from __future__ import annotations

from collections import Counter


def length_counts(lengths: list[int]) -> dict[int, int]:
    """{length: number of texts}, sorted by length."""
    return dict(sorted(Counter(lengths).items()))


def share_longer(counts: dict[int, int], limit: int) -> float:
    """The share of texts longer than ``limit`` (what a canvas of that length truncates)."""
    total = sum(counts.values())
    return sum(n for length, n in counts.items() if int(length) > limit) / total if total else 0.0


def percentile_length(counts: dict[int, int], q: float) -> int:
    """The smallest length that at least a share ``q`` of the texts fit in (q = 0.95: the 95th percentile)."""
    total = sum(counts.values())
    seen = 0
    for length, n in sorted((int(k), v) for k, v in counts.items()):
        seen += n
        if seen >= q * total:
            return length
    raise ValueError("no lengths counted")


def overflow(counts: dict[int, int], limit: int) -> dict:
    """What a canvas of ``limit`` tokens does to these texts: the share it truncates and the lengths that fit."""
    return {"limit": limit, "share_longer": share_longer(counts, limit), "p50": percentile_length(counts, 0.5),
            "p95": percentile_length(counts, 0.95), "p99": percentile_length(counts, 0.99),
            "max": max(int(k) for k in counts)}
