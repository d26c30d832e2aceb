"""What every row's schema builds on: the backbone and canvas, one trained component, the sample count,
the Gaussian process and reverse loop the continuous rows share, the discrete rows' step count."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from textdiff.params.base import Section


class SharedModelParams(Section):
    """The backbone size and canvas every row shares (the ``defaults.model`` block)."""

    d_model: int = Field(128, ge=8)
    n_layers: int = Field(4, ge=1)
    n_heads: int = Field(4, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1)
    seq_len: int = Field(48, ge=4, description="maximum tokens per sequence incl. BOS/EOS")

    @model_validator(mode="after")
    def _heads_divide(self) -> "SharedModelParams":
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        return self


class BackboneParams(SharedModelParams):
    positions: Literal["rotary", "learned"] = Field(
        "learned", description="learned absolute position embeddings (GPT-2, BERT: the AR, Diffusion-LM, SSD-LM and "
                               "autoencoder references) or rotary (RoPE: the SEDD/MDLM backbones, the default of the "
                               "discrete families, whose bidirectional denoiser with learned positions stayed on the "
                               "unigram plateau — issue 14)")


RotaryPositions = Field("rotary", description="rotary (RoPE, as the SEDD/MDLM backbones) | learned (stayed on the "
                                              "unigram plateau here, issue 14)")


class TrainParams(Section):
    """One trained component. Under a FLOP budget (``budget.train_flops``) ``steps`` is derived:
    floor(budget_share × train_flops / FLOPs per step), and the warmup is min(warmup_steps, steps // 10)
    (textdiff.training.flops.budgeted)."""

    steps: int = Field(400, ge=1, description="optimizer steps; replaced by the derived count under a FLOP budget")
    batch_size: int = Field(64, ge=1)
    lr: float = Field(1e-3, gt=0)
    warmup_steps: int = Field(40, ge=0, description="linear warmup; under a budget capped at a tenth of the steps")
    budget_share: float | None = Field(
        None, gt=0, le=1, description="fraction of the row's budget.train_flops this component trains with; "
                                      "null = 1 (the row's only trained component)")
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    max_minutes: float = Field(10.0, gt=0, description="wall-clock budget; training stops early past it")
    checkpoint_every: int = Field(100, ge=1)
    log_every: int = Field(10, ge=1)
    ema_decay: float = Field(0.0, ge=0, lt=1, description="EMA of the weights for sampling and likelihood "
                                                          "(textdiff/training/ema.py); 0 = off")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="autocast of the training forward: auto = bf16 on CUDA; on a CPU bf16 only where a short "
                            "matmul measurement shows it faster than fp32 (textdiff/training/peak.py; AVX2-only CPUs "
                            "run bf16 at 0.3 GFLOP/s), recorded with the training metrics")


class SampleCountParams(Section):
    """How many texts a row's sample stage draws, and how many at once (the ``defaults.sample`` block)."""

    num_samples: int = Field(128, ge=2, description="at least 2: diversity and intervals need pairs")
    batch_size: int = Field(128, ge=1)


TokenSpace = Literal["tokens"]


SPACE_FIELD = Field("tokens", description="the row's diffusion space: these rows work on the project tokenizer's ids")


class DiffusionParams(Section):
    """The Gaussian process and how the denoiser is trained on it."""

    schedule: Literal["sqrt", "cosine", "linear", "tan_d"] = "sqrt"
    num_train_timesteps: int = Field(2000, ge=2, description="training T (t = i/T); sampling takes its own steps")
    tan_d: float = Field(9.0, gt=0, description="d of the tan_d schedule")
    parametrisation: Literal["x0", "eps", "v"] = "x0"
    self_condition: float = Field(0.5, ge=0, le=1, description="probability of a self-conditioned training pass")
    time_sampling: Literal["uniform", "low_discrepancy"] = Field(
        "uniform", description="how a training batch draws its t: independently | stratified over the batch")


class ContinuousSampleParams(SampleCountParams):
    """The shared Gaussian reverse loop (textdiff.sampling.gaussian_sampler)."""

    steps: int = Field(50, ge=1, description="reverse steps, independent of the training T")
    method: Literal["ddpm", "ddim"] = "ddpm"
    eta: float = Field(0.0, ge=0, le=1, description="DDIM noise (0 = deterministic)")
    self_condition: bool = Field(True, description="feed the previous x̂0 back (needs self_condition > 0 in training)")


class DiscreteSampleParams(SampleCountParams):
    steps: int = Field(128, ge=1, description="reverse steps (one denoiser call each); the last one denoises")


NO_ABSORBING_PRIOR = ("geometric leaves α(1) = e^(−σ̄(1)) > 0, so x_1 is not all [MASK] and the absorbing graph's "
                      "prior term is infinite: use loglinear or cosine (both reach α(1) = 0)")


class DecoderModelParams(Section):
    d_model: int = Field(128, ge=8)
    n_layers: int = Field(2, ge=1)
    n_heads: int = Field(4, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1)

    @model_validator(mode="after")
    def _heads_divide(self) -> "DecoderModelParams":
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        return self
