"""SSD-LM / TESS's row: Gaussian diffusion on the logit simplex (textdiff/families/simplex.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from textdiff.params.base import Section
from textdiff.params.shared import SPACE_FIELD, BackboneParams, SampleCountParams, TokenSpace, TrainParams


class SimplexDiffusionParams(Section):
    """SSD-LM / TESS: Gaussian noise on the ±k logit simplex."""

    simplex_k: float = Field(5.0, gt=0, description="k of the ±k simplex; the forward noise is scaled by k")
    schedule: Literal["sqrt", "cosine", "linear", "tan_d"] = "cosine"
    num_train_timesteps: int = Field(1000, ge=2, description="training T (t = i/T); sampling takes its own steps")
    tan_d: float = Field(9.0, gt=0)
    self_condition: float = Field(0.5, ge=0, le=1, description="probability of a self-conditioned training pass")
    time_sampling: Literal["uniform", "low_discrepancy"] = Field(
        "uniform", description="how a training batch draws its t: independently | stratified over the batch")


class SimplexModelParams(BackboneParams):
    diffusion: SimplexDiffusionParams = Field(default_factory=SimplexDiffusionParams)


class SimplexSampleParams(SampleCountParams):
    steps: int = Field(50, ge=1, description="reverse steps, independent of the training T")
    projection: Literal["sample", "top_p"] = Field(
        "sample", description="back onto ±k each step: sample one token from the top-p nucleus | the nucleus multi-hot")
    top_p: float = Field(0.95, ge=0, le=1, description="nucleus mass of the projection; 0 keeps only the argmax")
    self_condition: bool = Field(True, description="feed the previous step's logits back (needs training with it)")


class SimplexParams(Section):
    family: Literal["simplex"] = "simplex"
    space: TokenSpace = SPACE_FIELD
    model: SimplexModelParams = Field(default_factory=SimplexModelParams)
    train: TrainParams = Field(default_factory=TrainParams)
    sample: SimplexSampleParams = Field(default_factory=SimplexSampleParams)


ROW = SimplexParams  # the row schema (textdiff.params.reading picks it by the family name)
