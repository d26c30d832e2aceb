"""Degenerate output, named (DESIGN.md §9): a row whose samples are mostly empty or one repeated
unit is reported as such and never ranked.

Per sample:
- *empty*: nothing but whitespace;
- *one repeated unit*: not empty, and either
  (a) it has ≥ 4 word tokens (``textdiff.eval.ngrams.words``) and its most frequent
      token makes up ≥ 50 % of them ("the the the movie the"), or
  (b) runs of one repeated character, each ≥ 6 long, make up ≥ 50 % of its
      non-whitespace characters ("Innnnnnnn", "Innnnnnnn Innnnnnnn", "!!!!!!!!";
      a real "sooooo good" in a longer sentence is not).

- *noise-like*: not empty, and the judge finds it as unpredictable as noise: its judge
  NLL per token is at or above ``noise_like_threshold`` of the noise floor's texts (text
  drawn position by position from the training split's positional unigram, stage
  ``evaluate_noise_floor``): the floor's first quartile, so three quarters of the
  floor's own texts are noise-like and real held-out text almost never is.

The row is degenerate when any of these holds:
- more than half of the samples are empty;
- more than half of the samples are one repeated unit;
- more than half of the samples are one or the other;
- more than half of the samples are noise-like (when the floor's threshold is known);
- div or mem cannot be computed: the samples have no 4-grams (both are nan then);
- there are no samples.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from textdiff.eval.ngrams import ngrams, words

MIN_WORDS = 4          # rule (a) applies to samples of at least this many word tokens
REPEAT_SHARE = 0.5     # the repeated unit's share of the sample, rules (a) and (b)
MIN_RUN = 6            # rule (b): runs of one character at least this long
MAJORITY = 0.5         # a row is degenerate when more than this share of samples is
NOISE_QUANTILE = 0.25  # noise-like: judge nats/token at or above this quantile of the noise floor's texts

_RUN = re.compile(r"(\S)\1{%d,}" % (MIN_RUN - 1))


def is_empty(text: str) -> bool:
    return not text.strip()


def is_repeated_unit(text: str) -> bool:
    """Rule (a) or (b) of the module doc (an empty text is not: it is empty)."""
    if is_empty(text):
        return False
    toks = words(text)
    if len(toks) >= MIN_WORDS and Counter(toks).most_common(1)[0][1] >= REPEAT_SHARE * len(toks):
        return True
    chars = sum(not c.isspace() for c in text)
    in_runs = sum(len(m.group(0)) for m in _RUN.finditer(text))
    return in_runs > 0 and in_runs >= REPEAT_SHARE * chars


def noise_like_threshold(floor_nats_per_token) -> float:
    """The judge nats/token at the ``NOISE_QUANTILE`` of the noise floor's non-empty texts (the caller leaves the
    empty ones out; nan values are dropped here)."""
    values = sorted(float(v) for v in floor_nats_per_token if v == v)
    if not values:
        raise ValueError("the noise floor has no scored text to set the noise-like threshold")
    position = NOISE_QUANTILE * (len(values) - 1)  # linear interpolation, as numpy's default quantile
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def noise_like(texts: list[str], nats_per_token, threshold: float | None) -> list[bool] | None:
    """Per sample: not empty and judge nats/token ≥ ``threshold``; None without a threshold."""
    if threshold is None:
        return None
    return [not is_empty(t) and v == v and v >= threshold for t, v in zip(texts, nats_per_token, strict=True)]


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def degenerate_report(texts: list[str], div: float | None = None, mem: float | None = None,
                      nats_per_token=None, noise_threshold: float | None = None, noise_rule: bool = True) -> dict:
    """{"degenerate", "reasons", "empty_share", "repeated_token_share", "noise_like_share"} for a row's samples.

    ``repeated_token_share`` is the share of all samples that are one repeated unit,
    ``noise_like_share`` the share that are noise-like (None without ``nats_per_token``,
    the judge's per-sample NLL per token, and the floor's ``noise_threshold``); ``noise_rule=False`` reports
    the share without making a majority of noise-like samples degenerate (the noise floor's own texts). The
    noise-like share is judged on its own, not added to the empty and repeated shares.
    ``div`` and ``mem``, when given, are the row's values (nan = cannot be computed);
    without them "no 4-grams in the samples" stands for both, as it is exactly when
    ``diversity`` and ``memorisation`` return nan.
    """
    n = len(texts)
    if n == 0:
        return {"degenerate": True, "reasons": ["no samples"], "empty_share": float("nan"),
                "repeated_token_share": float("nan"), "noise_like_share": None}
    empty = sum(is_empty(t) for t in texts) / n
    repeated = sum(is_repeated_unit(t) for t in texts) / n
    flags = noise_like(texts, nats_per_token, noise_threshold) if nats_per_token is not None else None
    noisy = None if flags is None else sum(flags) / n
    reasons = []
    if empty > MAJORITY:
        reasons.append(f"{_pct(empty)} of samples are empty")
    if repeated > MAJORITY:
        reasons.append(f"{_pct(repeated)} of samples are one repeated token or character")
    if not reasons and empty + repeated > MAJORITY:
        reasons.append(f"{_pct(empty + repeated)} of samples are empty ({_pct(empty)}) "
                       f"or one repeated token ({_pct(repeated)})")
    if noise_rule and noisy is not None and noisy > MAJORITY:
        reasons.append(f"{_pct(noisy)} of samples are as unpredictable to the judge as noise (nats/token ≥ "
                       f"{noise_threshold:.2f}, the noise floor's first quartile)")
    no_four_grams = not any(ngrams(words(t), 4) for t in texts)
    for name, value in (("div", div), ("mem", mem)):
        if (value is None and no_four_grams) or (value is not None and not math.isfinite(value)):
            reasons.append(f"{name} cannot be computed: no 4-grams" if no_four_grams
                           else f"{name} cannot be computed")
    return {"degenerate": bool(reasons), "reasons": reasons, "empty_share": float(empty),
            "repeated_token_share": float(repeated), "noise_like_share": noisy}
