"""SEDD's rows: score entropy on the absorbing or uniform graph (textdiff/families/sedd.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from textdiff.params.base import Section
from textdiff.params.shared import (NO_ABSORBING_PRIOR, SPACE_FIELD, BackboneParams, DiscreteSampleParams,
                                    RotaryPositions, TokenSpace, TrainParams)


class SEDDModelParams(BackboneParams):
    """The SEDD score network (time-conditioned) and its continuous-time process."""

    positions: Literal["rotary", "learned"] = RotaryPositions
    graph: Literal["absorbing", "uniform"] = "absorbing"
    schedule: Literal["loglinear", "geometric", "cosine"] = "loglinear"

    @model_validator(mode="after")
    def _uniform_needs_finite_noise(self) -> "SEDDModelParams":
        if self.graph == "uniform" and self.schedule != "geometric":
            raise ValueError("the uniform graph needs schedule: geometric (its total noise must stay finite at t = 1)")
        if self.graph == "absorbing" and self.schedule == "geometric":
            raise ValueError(f"the absorbing graph with schedule {NO_ABSORBING_PRIOR}")
        return self


class SEDDSampleParams(DiscreteSampleParams):
    method: Literal["tweedie", "euler"] = Field("tweedie", description="tweedie τ-leaping | euler")


class SEDDParams(Section):
    family: Literal["sedd"] = "sedd"
    space: TokenSpace = SPACE_FIELD
    model: SEDDModelParams = Field(default_factory=SEDDModelParams)
    train: TrainParams = Field(default_factory=TrainParams)
    sample: SEDDSampleParams = Field(default_factory=SEDDSampleParams)


ROW = SEDDParams  # the row schema (textdiff.params.reading picks it by the family name)
