"""D3PM's rows: discrete-time uniform or absorbing transitions (textdiff/families/d3pm.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from textdiff.params.base import Section
from textdiff.params.shared import (SPACE_FIELD, BackboneParams, DiscreteSampleParams, RotaryPositions, TokenSpace,
                                    TrainParams)


class D3PMModelParams(BackboneParams):
    """The D3PM denoiser (time-conditioned, predicts x0) and its discrete-time process."""

    positions: Literal["rotary", "learned"] = RotaryPositions
    graph: Literal["uniform", "absorbing"] = "uniform"
    num_train_timesteps: int = Field(1000, ge=2, description="T, the number of discrete corruption steps")
    schedule: Literal["linear", "cosine", "cosine_squared"] = Field(
        "cosine", description="ᾱ_t: linear = 1 − t/T (β_t = 1/(T−t+1)) | cosine (the reference code's cos) | "
                              "cosine_squared (cos², Nichol & Dhariwal); ᾱ_T = 0 for each")
    hybrid_lambda: float = Field(0.01, ge=0, description="λ of L_λ = KL_t + λ·CE as in D3PM's reference code "
                                                         "(trained ×T, textdiff/losses/discrete.py)")


class D3PMParams(Section):
    family: Literal["d3pm"] = "d3pm"
    space: TokenSpace = SPACE_FIELD
    model: D3PMModelParams = Field(default_factory=D3PMModelParams)
    train: TrainParams = Field(default_factory=TrainParams)
    sample: DiscreteSampleParams = Field(default_factory=DiscreteSampleParams)

    @model_validator(mode="after")
    def _steps_within_t(self) -> "D3PMParams":
        if self.sample.steps > self.model.num_train_timesteps:
            raise ValueError(f"sample.steps ({self.sample.steps}) exceeds model.num_train_timesteps "
                             f"({self.model.num_train_timesteps})")
        return self


ROW = D3PMParams  # the row schema (textdiff.params.reading picks it by the family name)
