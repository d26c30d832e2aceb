"""TEncDM's rows: diffusion on a frozen encoder's features, with a trained decoder (textdiff/families/encoder.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from textdiff.params.base import Section
from textdiff.params.shared import (BackboneParams, ContinuousSampleParams, DecoderModelParams, DiffusionParams,
                                    TrainParams)


class EncoderSpaceParams(Section):
    """Features of the frozen MiniLM, computed once by the space stage and standardised per dimension."""

    features: Literal["encodings", "embeddings"] = Field(
        "encodings", description="encodings: last hidden states | embeddings: MiniLM's input token embeddings")
    max_length: int = Field(48, ge=4, description="MiniLM WordPiece tokens per sentence incl. [CLS] and [SEP] "
                                                  "(= model.seq_len)")
    batch_size: int = Field(128, ge=1, description="sentences per encoder call")


class DecoderParams(Section):
    """The trained decoder from (noised) standardised features to MiniLM tokens."""

    model: DecoderModelParams = Field(default_factory=DecoderModelParams)
    noise_t_max: float = Field(0.15, ge=0, le=1, description="decoder training noise: t ~ U[0, noise_t_max]")
    eval_t: float = Field(0.05, ge=0, le=1, description="the 'lightly noised' time of the reported accuracy")
    train: TrainParams = Field(default_factory=lambda: TrainParams(steps=300, warmup_steps=30, budget_share=0.2))


def _encoder_diffusion() -> DiffusionParams:
    return DiffusionParams(schedule="tan_d", num_train_timesteps=1000, tan_d=9.0, parametrisation="x0",
                           self_condition=0.5)


class EncoderModelParams(BackboneParams):
    diffusion: DiffusionParams = Field(default_factory=_encoder_diffusion)


class EncoderParams(Section):
    """TEncDM: Gaussian diffusion on standardised frozen-encoder features, decoded by a trained decoder."""

    family: Literal["encoder"] = "encoder"
    space: EncoderSpaceParams = Field(default_factory=EncoderSpaceParams)
    decoder: DecoderParams = Field(default_factory=DecoderParams)
    model: EncoderModelParams = Field(default_factory=EncoderModelParams)
    train: TrainParams = Field(default_factory=lambda: TrainParams(budget_share=0.8))
    sample: ContinuousSampleParams = Field(default_factory=ContinuousSampleParams)

    @model_validator(mode="after")
    def _canvas_matches_space(self) -> "EncoderParams":
        if self.model.seq_len != self.space.max_length:
            raise ValueError(f"model.seq_len ({self.model.seq_len}) must equal space.max_length "
                             f"({self.space.max_length}): the canvas is the encoder's token sequence")
        return self


ROW = EncoderParams  # the row schema (textdiff.params.reading picks it by the family name)
