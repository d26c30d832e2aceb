"""Latent diffusion's rows (PLANNER, LD4LG): an autoencoder's sentence latents (textdiff/families/latent.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from textdiff.params.base import Section
from textdiff.params.shared import (BackboneParams, ContinuousSampleParams, DecoderModelParams, DiffusionParams,
                                    TrainParams)


class CompressorParams(DecoderModelParams):
    """The autoencoder's encoder side, over the frozen MiniLM encodings: PLANNER's attention pooling
    (n_layers = 1 is a single pooling) or LD4LG's Perceiver layers. The same sizes as a feature decoder."""


class ReconstructionParams(Section):
    """How the autoencoder stage measures held-out reconstruction."""

    sentences: int = Field(512, ge=1, description="held-out (test split) sentences decoded")
    method: Literal["greedy", "beam"] = "greedy"
    beam_size: int = Field(4, ge=1)
    batch_size: int = Field(128, ge=1)


class LatentSpaceParams(Section):
    """A sentence as a fixed set of latent vectors: the autoencoder (stage autoencoder@ROW) and the
    latents of the training split (stage space@ROW)."""

    autoencoder: Literal["planner", "ld4lg"] = Field(
        "ld4lg", description="planner: VAE with attention pooling | ld4lg: Perceiver, L2-normalised ×√dim")
    num_latents: int = Field(16, ge=1)
    latent_dim: int = Field(64, ge=2)
    kl_beta: float = Field(1e-5, ge=0, description="planner only: weight of the KL to N(0, I)")
    max_length: int = Field(48, ge=4, description="MiniLM WordPiece tokens the encoder reads")
    encoder_batch_size: int = Field(128, ge=1, description="sentences per MiniLM call")
    compressor: CompressorParams = Field(default_factory=CompressorParams)
    decoder: BackboneParams = Field(default_factory=lambda: BackboneParams(n_layers=3),
                                    description="the causal decoder over the project tokenizer's ids")
    train: TrainParams = Field(default_factory=lambda: TrainParams(steps=3000, lr=2e-3, warmup_steps=100, max_minutes=20,
                                                                   checkpoint_every=250, budget_share=0.5))
    reconstruction: ReconstructionParams = Field(default_factory=ReconstructionParams)


def _latent_diffusion() -> DiffusionParams:
    return DiffusionParams(schedule="cosine", num_train_timesteps=1000, parametrisation="v", self_condition=0.5)


class LatentModelParams(BackboneParams):
    """The denoiser over the latent vectors: seq_len is the number of latents."""

    seq_len: int = Field(16, ge=1, le=4096)
    diffusion: DiffusionParams = Field(default_factory=_latent_diffusion)


class LatentSampleParams(ContinuousSampleParams):
    """The shared Gaussian loop in latent space, then the autoencoder's decoder."""

    steps: int = Field(250, ge=1, description="reverse steps (LD4LG: about 250)")
    decoding: Literal["greedy", "beam", "top_p"] = "greedy"
    beam_size: int = Field(4, ge=1)
    top_p: float = Field(0.9, gt=0, le=1)


class LatentParams(Section):
    """Latent diffusion (PLANNER, LD4LG): Gaussian diffusion over an autoencoder's sentence latents."""

    family: Literal["latent"] = "latent"
    space: LatentSpaceParams = Field(default_factory=LatentSpaceParams)
    model: LatentModelParams = Field(default_factory=LatentModelParams)
    train: TrainParams = Field(default_factory=lambda: TrainParams(budget_share=0.5))
    sample: LatentSampleParams = Field(default_factory=LatentSampleParams)

    @model_validator(mode="after")
    def _canvas_is_the_latents(self) -> "LatentParams":
        if self.model.seq_len != self.space.num_latents:
            raise ValueError(f"model.seq_len ({self.model.seq_len}) must equal space.num_latents "
                             f"({self.space.num_latents}): the canvas is the latent vectors")
        return self


ROW = LatentParams  # the row schema (textdiff.params.reading picks it by the family name)
