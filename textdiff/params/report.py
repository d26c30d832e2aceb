"""The report stage's section."""

from __future__ import annotations

from pydantic import Field

from textdiff.params.base import Section


class ReportParams(Section):
    samples_per_model: int = Field(8, ge=0)
