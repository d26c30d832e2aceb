"""Cleaning: normalise whitespace, drop control characters and empty lines,
drop exact duplicates, and filter by length."""

from __future__ import annotations

import re
import unicodedata

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]")
_SPACE = re.compile(r"\s+")
_WORD_OR_PUNCT = re.compile(r"\w+|[^\w\s]")


def clean_text(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub(" ", text)
    return _SPACE.sub(" ", text).strip()


def length(text: str, unit: str) -> int:
    """Length in whitespace words, or in 'tokens': words and punctuation marks counted apart."""
    if unit == "words":
        return len(text.split())
    if unit == "tokens":
        return len(_WORD_OR_PUNCT.findall(text))
    raise ValueError(f"unknown length unit {unit!r}")


def clean_records(records: list[dict], min_length: int, max_length: int, unit: str,
                  keep_labels: list[str] | None = None) -> tuple[list[dict], dict]:
    """Return the kept records (first occurrence order) and counts of what was dropped."""
    seen: set[str] = set()
    kept: list[dict] = []
    dropped = {"empty": 0, "duplicate": 0, "too_short": 0, "too_long": 0, "label": 0}
    for rec in records:
        if keep_labels is not None and rec.get("label") not in keep_labels:
            dropped["label"] += 1
            continue
        text = clean_text(str(rec["text"]))
        if not text:
            dropped["empty"] += 1
            continue
        if text in seen:
            dropped["duplicate"] += 1
            continue
        seen.add(text)
        n = length(text, unit)
        if n < min_length:
            dropped["too_short"] += 1
        elif n > max_length:
            dropped["too_long"] += 1
        else:
            kept.append({"text": text, "label": rec.get("label")})
    return kept, dropped
