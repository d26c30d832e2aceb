"""Cell formatting shared by every report table: a figure, and a figure with its 95 % interval."""

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
