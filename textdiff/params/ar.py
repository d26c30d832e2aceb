"""The autoregressive baseline's row (textdiff/families/ar.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from textdiff.params.base import Section
from textdiff.params.shared import SPACE_FIELD, BackboneParams, SampleCountParams, TokenSpace, TrainParams


class ARSampleParams(SampleCountParams):
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    use_cache: bool = True


class ARParams(Section):
    family: Literal["ar"] = "ar"
    space: TokenSpace = SPACE_FIELD
    model: BackboneParams = Field(default_factory=BackboneParams)
    train: TrainParams = Field(default_factory=TrainParams)
    sample: ARSampleParams = Field(default_factory=ARSampleParams)


ROW = ARParams  # the row schema (textdiff.params.reading picks it by the family name)
