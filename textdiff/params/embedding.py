"""Diffusion-LM's row: Gaussian diffusion on learned embeddings (textdiff/families/embedding.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from textdiff.params.base import Section
from textdiff.params.shared import (SPACE_FIELD, BackboneParams, ContinuousSampleParams, DiffusionParams, TokenSpace,
                                    TrainParams)


class GaussianSampleParams(ContinuousSampleParams):
    """Embedding diffusion's sampling: the shared loop plus clamping and rounding to the embeddings."""

    clamp: bool = Field(True, description="replace x̂0 by its nearest embeddings inside each step")
    clamp_from: int = Field(0, ge=0, description="first step index (0 = noisiest) at which clamping applies")
    rounding: Literal["faiss", "torch"] = "faiss"

    @model_validator(mode="after")
    def _clamp_within_steps(self) -> "GaussianSampleParams":
        if self.clamp and self.clamp_from >= self.steps:
            raise ValueError(f"clamp_from ({self.clamp_from}) must be below steps ({self.steps}): clamping would "
                             f"never happen (set clamp: false to turn it off)")
        return self


class EmbeddingModelParams(BackboneParams):
    """Everything that defines the trained model: backbone, embedding size, diffusion process."""

    embedding_dim: int = Field(32, ge=2)
    diffusion: DiffusionParams = Field(default_factory=DiffusionParams)


class EmbeddingParams(Section):
    family: Literal["embedding"] = "embedding"
    space: TokenSpace = SPACE_FIELD
    model: EmbeddingModelParams = Field(default_factory=EmbeddingModelParams)
    train: TrainParams = Field(default_factory=TrainParams)
    sample: GaussianSampleParams = Field(default_factory=GaussianSampleParams)


ROW = EmbeddingParams  # the row schema (textdiff.params.reading picks it by the family name)
