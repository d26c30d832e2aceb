"""MDLM's row: masked (absorbing) diffusion (textdiff/families/mdlm.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from textdiff.params.base import Section
from textdiff.params.shared import (NO_ABSORBING_PRIOR, SPACE_FIELD, BackboneParams, RotaryPositions,
                                    SampleCountParams, TokenSpace, TrainParams)


class MaskedModelParams(BackboneParams):
    """The MDLM denoiser and its absorbing process."""

    positions: Literal["rotary", "learned"] = RotaryPositions
    schedule: Literal["loglinear", "cosine"] = Field("loglinear", description="loglinear | cosine; not geometric: "
                                                     + NO_ABSORBING_PRIOR)
    time_conditioning: bool = Field(False, description="MDLM needs no t; without it the sampler can cache")


class MaskedSampleParams(SampleCountParams):
    steps: int = Field(128, ge=1, description="reverse steps (the last one reveals every remaining mask)")
    use_cache: bool = Field(True, description="skip the denoiser when no token changed (needs no t input)")


class MDLMParams(Section):
    family: Literal["mdlm"] = "mdlm"
    space: TokenSpace = SPACE_FIELD
    model: MaskedModelParams = Field(default_factory=MaskedModelParams)
    train: TrainParams = Field(default_factory=TrainParams)
    sample: MaskedSampleParams = Field(default_factory=MaskedSampleParams)


ROW = MDLMParams  # the row schema (textdiff.params.reading picks it by the family name)
