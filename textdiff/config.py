"""The one typed params schema.

``params.yaml`` is loaded through :func:`load_params`. An unknown key, a wrong
type or an impossible value raises :class:`ParamsError` whose message names the
dotted key path (``ar.train.steps``) and what was expected, before any stage
touches its outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml

from textdiff.errors import InputError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


CORPUS_DIR = "corpus"  # local corpus files live here; dvc.yaml makes the folder a dependency of prepare


class ParamsError(InputError):
    """Invalid params: the message names the file, the key path and the problem."""


def deep_merge(base: dict, over: dict) -> dict:
    """``base`` with ``over`` written on top, mapping by mapping."""
    out = dict(base)
    for key, value in over.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


class Section(BaseModel):
    """Base of every params section: unknown keys are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _written_over_defaults(cls, raw: Any) -> Any:
        """A part written in part keeps its schema default for the rest: ``decoder: {train: {steps: 20}}``
        keeps the decoder's own learning rate and budget share, not those of a bare TrainParams."""
        if not isinstance(raw, dict):
            return raw
        out = dict(raw)
        for name, field in cls.model_fields.items():
            if isinstance(raw.get(name), dict) and field.default_factory is not None:
                default = field.default_factory()
                if isinstance(default, BaseModel):
                    out[name] = deep_merge(default.model_dump(mode="json"), raw[name])
        return out


# --------------------------------------------------------------------------- data


class DataParams(Section):
    source: Literal["rotten_tomatoes", "huggingface", "files"] = "rotten_tomatoes"
    hf_dataset: str | None = Field(None, description="dataset name for source=huggingface")
    hf_config: str | None = None
    hf_split: str = "train"
    files: list[str] = Field(default_factory=list, description=".txt/.jsonl/.csv/.parquet paths")
    text_column: str = "text"
    label_column: str | None = Field("category", description="kept as the attribute label; null for none")
    keep_labels: list[str] | None = Field(
        None, description="keep only rows whose label is in this list (null keeps all)"
    )
    length_unit: Literal["words", "tokens"] = "words"
    min_length: int = Field(3, ge=1)
    max_length: int = Field(40, ge=1)
    max_examples: int | None = Field(None, ge=10, description="cap on the corpus after cleaning")
    valid_fraction: float = Field(0.05, gt=0, lt=1)
    test_fraction: float = Field(0.05, gt=0, lt=1)

    @model_validator(mode="after")
    def _check(self) -> "DataParams":
        if self.min_length > self.max_length:
            raise ValueError(f"min_length ({self.min_length}) > max_length ({self.max_length})")
        if self.valid_fraction + self.test_fraction >= 1:
            raise ValueError("valid_fraction + test_fraction must leave training data (< 1)")
        if self.source == "huggingface" and not self.hf_dataset:
            raise ValueError("source=huggingface needs hf_dataset")
        if self.source == "files" and not self.files:
            raise ValueError("source=files needs at least one path in files")
        return self


class TokenizerParams(Section):
    vocab_size: int = Field(4096, ge=300, description="BPE vocabulary incl. 256 bytes and specials")
    min_frequency: int = Field(2, ge=1)


# --------------------------------------------------------------------------- models


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


class ARSampleParams(SampleCountParams):
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    use_cache: bool = True


TokenSpace = Literal["tokens"]
SPACE_FIELD = Field("tokens", description="the row's diffusion space: these rows work on the project tokenizer's ids")


class ARParams(Section):
    family: Literal["ar"] = "ar"
    space: TokenSpace = SPACE_FIELD
    model: BackboneParams = Field(default_factory=BackboneParams)
    train: TrainParams = Field(default_factory=TrainParams)
    sample: ARSampleParams = Field(default_factory=ARSampleParams)


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


NO_ABSORBING_PRIOR = ("geometric leaves α(1) = e^(−σ̄(1)) > 0, so x_1 is not all [MASK] and the absorbing graph's "
                      "prior term is infinite: use loglinear or cosine (both reach α(1) = 0)")


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


class DiscreteSampleParams(SampleCountParams):
    steps: int = Field(128, ge=1, description="reverse steps (one denoiser call each); the last one denoises")


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


class EncoderSpaceParams(Section):
    """Features of the frozen MiniLM, computed once by the space stage and standardised per dimension."""

    features: Literal["encodings", "embeddings"] = Field(
        "encodings", description="encodings: last hidden states | embeddings: MiniLM's input token embeddings")
    max_length: int = Field(48, ge=4, description="MiniLM WordPiece tokens per sentence incl. [CLS] and [SEP] "
                                                  "(= model.seq_len)")
    batch_size: int = Field(128, ge=1, description="sentences per encoder call")


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


class FeaturesParams(Section):
    """MiniLM's encodings of the training and test splits, computed once (stage features) and read by every row
    that needs them at this canvas: the encoder rows' spaces and decoders, the latent rows' autoencoders and
    latent datasets. A row whose ``space.max_length`` differs encodes its own sentences (slower, same maths)."""

    max_length: int = Field(48, ge=4, description="MiniLM WordPiece tokens per sentence incl. [CLS] and [SEP]")
    batch_size: int = Field(128, ge=1, description="sentences per MiniLM call")


class StepsSweepParams(Section):
    """Generative perplexity and entropy of each discrete model against the number of sampling steps."""

    families: list[Literal["mdlm", "d3pm", "sedd"]] = Field(
        default_factory=lambda: ["mdlm", "d3pm", "sedd"],
        description="every row of these families is swept (stage steps_sweep@ROW); the other rows' stage writes a "
                    "one-line record")
    steps: list[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [8, 32, 128], min_length=1)
    num_samples: int = Field(48, ge=2)
    batch_size: int = Field(48, ge=1)
    cache_steps: int = Field(1000, ge=0, description="a family with a sampling cache (mdlm) is also timed cached "
                                                     "against uncached at this many steps, the same samples: MDLM's "
                                                     "claim at its T = 1000 (0: not timed)")
    cache_samples: int = Field(4, ge=1, description="samples drawn by each of the two timed runs (8 took 28 s "
                                                  "uncached for the default mdlm on one core)")


# --------------------------------------------------------------------------- evaluation


class EvaluateParams(Section):
    judge: str = Field("judge", description="'judge' (the judge stage's LM, trained on the project tokenizer) or "
                                            "a local path to a Hugging Face causal LM")
    num_references: int = Field(512, ge=2, description="held-out texts compared against by mauve")
    mauve_scaling: float = Field(5.0, gt=0)
    batch_size: int = Field(64, ge=1)
    elbo_t_draws: int = Field(16, ge=1, description="Monte-Carlo draws of t per held-out sequence for ELBO bounds")
    bootstrap: int = Field(1000, ge=0, description="bootstrap resamples of the samples for the 95% intervals of "
                                                   "gen_ppl, entropy, div and mem (0 = no intervals)")
    mauve_bootstrap: int = Field(200, ge=0, description="bootstrap resamples for mauve's interval, each a k-means "
                                                        "rerun (~0.03 s at 256 vs 256 on 2 CPU cores; 0 = none)")


class JudgeParams(Section):
    """The LM that scores every row's samples (gen_ppl): a causal transformer on the project tokenizer, larger
    and trained longer than any row, in its own cached stage. Unused when evaluate.judge is a path."""

    model: BackboneParams = Field(default_factory=lambda: BackboneParams(d_model=192, n_layers=4, n_heads=4,
                                                                         dropout=0.1, seq_len=64))
    train: TrainParams = Field(default_factory=lambda: TrainParams(steps=600, lr=2e-3, warmup_steps=60, weight_decay=0.1,
                                                                   max_minutes=30, checkpoint_every=200))


class InfillParams(Section):
    """The infill@ROW stages: held-out test sentences with one middle span or two spans blank."""

    num_templates: int = Field(96, ge=2, description="test sentences turned into templates (the first that fit)")
    fills: int = Field(3, ge=2, description="fills of each template (their diversity is a metric)")
    min_tokens: int = Field(8, ge=5, description="shortest sentence used, in project tokens")
    max_tokens: int = Field(30, ge=5, description="longest sentence used; <bos> and <eos> must still fit every "
                                                  "infilling row's model.seq_len")
    blank_share: tuple[float, float] = Field((0.2, 0.5), description="the blank share of a template's tokens is "
                                                                     "drawn uniformly in this range")
    batch_size: int = Field(64, ge=1)

    @model_validator(mode="after")
    def _check(self) -> "InfillParams":
        lo, hi = self.blank_share
        if not 0 < lo <= hi < 1:
            raise ValueError(f"blank_share {list(self.blank_share)} must satisfy 0 < low <= high < 1")
        if self.min_tokens > self.max_tokens:
            raise ValueError(f"min_tokens ({self.min_tokens}) > max_tokens ({self.max_tokens})")
        return self


class GuideClassifierParams(Section):
    """The attribute classifier that guides sampling (textdiff/tasks/attribute_classifier.py)."""

    dim: int = Field(64, ge=4)
    hidden: int = Field(64, ge=4)
    steps: int = Field(600, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(3e-3, gt=0)
    max_drop: float = Field(0.5, ge=0, lt=1, description="training drops a share U(0, max_drop) of each sentence's "
                                                         "tokens, as a partly revealed canvas")


class ControlParams(Section):
    """The control@ROW stages: samples guided toward each label, judged by an independent classifier."""

    strength: float = Field(4.0, ge=0, description="guidance strength γ (0 = unguided); swept in ablations.yaml")
    num_samples: int = Field(48, ge=2, description="samples per label, and unguided")
    batch_size: int = Field(48, ge=1)
    labels: list[str] | None = Field(None, min_length=1, description="labels to steer toward (null: every label "
                                                                     "of the training split)")
    classifier: GuideClassifierParams = Field(default_factory=GuideClassifierParams)
    judge_sentences: int = Field(2000, ge=10, description="training sentences of the independent judge "
                                                          "(logistic regression on MiniLM features)")
    judge_c: float = Field(1.0, gt=0, description="inverse L2 strength of the judge's logistic regression")


class ReportParams(Section):
    samples_per_model: int = Field(8, ge=0)


class OrchestrationParams(Section):
    """How Prefect runs the stages (pipelines/); no stage depends on these."""

    retries: int = Field(2, ge=0, description="retries of a failed stage")
    retry_backoff_s: float = Field(10.0, ge=0, description="first retry delay; doubles per retry")
    schedule_cron: str = Field("0 3 * * *", description="cron of the served deployment")
    work_pool: str = Field("textdiff", description="work pool of the pipeline's deployment (whole flow runs)")
    gpu_pool: str | None = Field(None, description="work pool that runs the stages of the kinds in gpu_stages, "
                                                   "each in a flow run of its own; null: every stage runs where "
                                                   "the flow runs. Needs remote: outputs come back through it")
    gpu_stages: list[str] = Field(["train", "sample"], description="kinds of stage (the name before @) sent to "
                                                                 "gpu_pool")
    gpu_timeout_s: float = Field(6 * 3600, gt=0, description="how long a stage sent to gpu_pool may take, queueing "
                                                            "for a worker included, before the stage fails")
    remote: str | None = Field(None, description="DVC remote shared by workers (null: local cache only)")
    sweep_jobs: int = Field(1, ge=1, description="DVC experiments run at once in an ablation sweep")
    server_startup_timeout_s: int = Field(300, ge=1, description="how long a flow waits for Prefect's temporary API "
                                                                "server (no PREFECT_API_URL set) to answer")
    concurrency: int = Field(1, ge=1, description="stages a flow runs at once on one worker, each as soon as its "
                                                  "DVC upstreams finish; the cores are shared out between them, so "
                                                  "each stage's speed figures then share the machine")


class BudgetParams(Section):
    """Compute-matched rows (DESIGN §9): every row trains with the same FLOPs, autoencoders and decoders
    included; each component's ``train.budget_share`` splits its row's budget and sets its steps."""

    train_flops: float | None = Field(
        None, gt=0, description="training FLOPs per row (forward + backward, textdiff.training.flops); "
                                "null = every component trains its written steps")


def train_components(section: Section) -> dict[str, TrainParams]:
    """A row's trained components by key path below the row, in the order they train: its autoencoder's
    ``space.train`` or its decoder's ``decoder.train`` where it has one, then ``train``."""
    parts = {}
    if isinstance(getattr(section, "space", None), LatentSpaceParams):
        parts["space.train"] = section.space.train
    if isinstance(getattr(section, "decoder", None), DecoderParams):
        parts["decoder.train"] = section.decoder.train
    parts["train"] = section.train
    return parts


class TrackingParams(Section):
    wandb_mode: Literal["offline", "online", "disabled"] = "offline"
    project: str = "textdiff"


RowParams = Annotated[
    ARParams | EmbeddingParams | MDLMParams | D3PMParams | SEDDParams | SimplexParams | EncoderParams | LatentParams,
    Field(discriminator="family")]
FAMILY_PARAMS = {cls.model_fields["family"].default: cls for cls in RowParams.__origin__.__args__}
FAMILIES = tuple(FAMILY_PARAMS)  # the family modules textdiff/families/<family>.py
SHARED_PARTS = ("model", "train", "sample")  # the parts of a row the defaults block is merged under
RESERVED_ROW_NAMES = frozenset({"reference", "noise_floor", "judge"})  # the pipeline's own rows and stages
RowName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


class DefaultsParams(Section):
    """What every row shares unless its own section says otherwise: merged under each row's ``model``,
    ``train`` and ``sample`` (the family's schema defaults < this block < the row's section)."""

    model: SharedModelParams = Field(default_factory=SharedModelParams)
    train: TrainParams = Field(default_factory=TrainParams)
    sample: SampleCountParams = Field(default_factory=SampleCountParams)


def resolve_row(raw: Any, defaults: dict) -> Any:
    """One row's raw section with the (written) defaults block under its model, train and sample; the family's
    schema defaults fill the rest (Section). Anything malformed is returned as is, for the schema to name."""
    if not isinstance(raw, dict):
        return raw
    shared = {part: deep_merge(written, raw[part]) if isinstance(raw.get(part), dict) else raw.get(part, written)
              for part, written in defaults.items() if part in SHARED_PARTS and isinstance(written, dict)}
    return {**raw, **shared}


class Params(Section):
    seed: int = Field(0, ge=0, lt=2**31, description="one seed for every stage (numpy's RNG takes < 2**32)")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    train_processes: int = Field(1, ge=1, le=1024, description=(
        "data-parallel training processes on this machine (torchrun + DDP: one per GPU, gloo on CPU); "
        "the global train.batch_size is split across them and must be divisible by it"))
    defaults: DefaultsParams = Field(default_factory=DefaultsParams)
    rows: dict[RowName, RowParams] = Field(
        default_factory=lambda: {"ar": ARParams()}, min_length=1,
        description="the rows of the comparison: each a section naming its family (textdiff/families/<family>.py) "
                    "and what differs from the defaults block")
    data: DataParams = Field(default_factory=DataParams)
    tokenizer: TokenizerParams = Field(default_factory=TokenizerParams)
    features: FeaturesParams = Field(default_factory=FeaturesParams)
    steps_sweep: StepsSweepParams = Field(default_factory=StepsSweepParams)
    judge: JudgeParams = Field(default_factory=JudgeParams)
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    infill: InfillParams = Field(default_factory=InfillParams)
    control: ControlParams = Field(default_factory=ControlParams)
    report: ReportParams = Field(default_factory=ReportParams)
    tracking: TrackingParams = Field(default_factory=TrackingParams)
    orchestration: OrchestrationParams = Field(default_factory=OrchestrationParams)
    budget: BudgetParams = Field(default_factory=BudgetParams)

    @model_validator(mode="before")
    @classmethod
    def _merge_defaults(cls, raw: Any) -> Any:
        """Every row's section with the defaults block merged under it (a bad default is then named once, at
        ``defaults``: _format_errors drops its copies under the rows)."""
        if not isinstance(raw, dict):
            return raw
        if "rows" not in raw:  # the schema's default rows take the defaults block too
            raw = {**raw, "rows": {"ar": {"family": "ar"}}}
        if not isinstance(raw["rows"], dict):
            return raw
        defaults = raw.get("defaults", {})
        if not isinstance(defaults, dict):
            return raw
        return {**raw, "rows": {name: resolve_row(row, defaults) for name, row in raw["rows"].items()}}

    @model_validator(mode="after")
    def _row_names_free(self) -> "Params":
        """A row's files are named after it beside the pipeline's own rows (metrics/eval/reference.json,
        samples/noise_floor.jsonl): those names cannot be rows."""
        for name in self.rows:
            if name in RESERVED_ROW_NAMES:
                raise ValueError(f"rows.{name}: {name!r} is a name the pipeline uses for its own rows and stages "
                                 f"({', '.join(sorted(RESERVED_ROW_NAMES))}); rename the row")
        return self

    @model_validator(mode="after")
    def _corpus_files_tracked(self) -> "Params":
        """Local corpus files must sit in corpus/, the folder DVC hashes as a dependency of prepare."""
        if self.data.source == "files":
            for i, name in enumerate(self.data.files):
                parts = Path(name).parts
                if Path(name).is_absolute() or len(parts) < 2 or parts[0] != CORPUS_DIR or ".." in parts:
                    raise ValueError(f"data.files[{i}]: {name!r} is not inside {CORPUS_DIR}/; put (or copy) local "
                                     f"corpus files in {CORPUS_DIR}/, which DVC tracks as a dependency of prepare, "
                                     f"and name them as {CORPUS_DIR}/FILE")
        return self

    @model_validator(mode="after")
    def _batches_split_across_processes(self) -> "Params":
        """Each rank trains on an equal slice of a row's global batch (textdiff/training/distributed.py)."""
        for row, section in self.rows.items():
            batch = section.train.batch_size
            if batch % self.train_processes:
                raise ValueError(f"rows.{row}.train.batch_size ({batch}) must be divisible by train_processes "
                                 f"({self.train_processes}): each process trains on an equal slice of the batch")
        return self

    @model_validator(mode="after")
    def _budget_shares(self) -> "Params":
        """Each row's component shares sum to 1; under a budget an enabled row of several components names
        every share (a single component's null share means 1)."""
        for row, section in self.rows.items():
            parts = train_components(section)
            shares = {f"rows.{row}.{path}.budget_share": cfg.budget_share for path, cfg in parts.items()}
            if len(shares) == 1:
                key, share = next(iter(shares.items()))
                if share is not None and abs(share - 1) > 1e-6:
                    raise ValueError(f"{key} is {share}: the shares of one row's components must sum to 1, "
                                     f"and {row} trains one component (leave it null, which means 1)")
                continue
            unset = [k for k, v in shares.items() if v is None]
            needed = self.budget.train_flops is not None
            if unset and (needed or len(unset) < len(shares)):
                raise ValueError(f"{', '.join(unset)} not set: {row} trains {len(shares)} components "
                                 f"({', '.join(shares)}); give each its share of budget.train_flops, summing to 1")
            if not unset and abs(sum(shares.values()) - 1) > 1e-6:
                raise ValueError(" + ".join(f"{k} ({v})" for k, v in shares.items())
                                 + f" = {sum(shares.values()):.6g}: the shares of one row's components must sum to 1")
        return self

    def row(self, name: str) -> RowParams:
        """The resolved params section of one row (the defaults block merged under it)."""
        if name not in self.rows:
            raise ParamsError(f"row {name!r} is not in params 'rows' ({', '.join(self.rows)})")
        return self.rows[name]

    @property
    def models(self) -> dict[str, str]:
        """Each row -> its family, from the rows' ``family:`` keys."""
        return {name: section.family for name, section in self.rows.items()}

    def rows_of(self, *families: str) -> list[str]:
        return [name for name, section in self.rows.items() if section.family in families]

    @property
    def swept_rows(self) -> list[str]:
        """The rows the steps sweep covers: every row of a family in ``steps_sweep.families``."""
        return self.rows_of(*self.steps_sweep.families)


def _error_path(loc: tuple) -> str:
    """The dotted key path of a schema error, without the family tag pydantic puts after a row's name."""
    parts = list(loc)
    if len(parts) >= 3 and parts[0] == "rows" and parts[2] in FAMILY_PARAMS | {"[key]": None}:
        del parts[2]
    return ".".join(str(p) for p in parts) or "(top level)"


def _error_message(e: dict) -> str:
    known = ", ".join(FAMILIES)
    if e["type"] == "extra_forbidden":
        return "unknown key (check the spelling; see textdiff/config.py for the schema)"
    if e["type"] == "union_tag_not_found":
        return f"no `family:` key: a row names its family, one of {known}"
    if e["type"] == "string_pattern_mismatch" and e["loc"][:1] == ("rows",) and "[key]" in e["loc"]:
        return "a row's name is lowercase letters, digits and _, starting with a letter (it names the row's " \
               "folders and DVC stages)"
    if e["type"] == "union_tag_invalid":
        return f"family {e['ctx']['tag']!r} is not a family; the families are {known}"
    return e["msg"]


def _inherited(e: dict, from_defaults: set) -> bool:
    """A row's copy of an error the defaults block already has (rows.ROW.PART... = defaults.PART...)."""
    loc = e["loc"]
    return loc[:1] == ("rows",) and len(loc) > 3 and loc[2] in FAMILY_PARAMS and (loc[3:], e["msg"]) in from_defaults


def _format_errors(err: ValidationError, source: str) -> str:
    lines = [f"invalid params in {source}:"]
    errors = err.errors()
    from_defaults = {(tuple(e["loc"][1:]), e["msg"]) for e in errors if e["loc"][:1] == ("defaults",)}
    for e in errors:
        if _inherited(e, from_defaults):
            continue
        got = e.get("input")
        quiet = e["type"] in ("extra_forbidden", "union_tag_not_found", "union_tag_invalid") or isinstance(got, dict)
        lines.append(f"  {_error_path(e['loc'])}: {_error_message(e)}{'' if quiet else f' (got {got!r})'}")
    return "\n".join(lines)


OLD_LAYOUT = ("a top-level `models:` mapping and one section per row is the layout before the `defaults` block: "
              "move each row's section under `rows:`, add `family: FAMILY` to it, keep only what differs from "
              "`defaults`, and drop `models`, `space_decoders` and `steps_sweep.models` (see the repository's "
              "params.yaml)")


def parse_params(raw: dict[str, Any], source: str = "params") -> Params:
    if not isinstance(raw, dict):
        raise ParamsError(f"invalid params in {source}: expected a mapping at the top level")
    if "models" in raw and "rows" not in raw:
        raise ParamsError(f"invalid params in {source}: {OLD_LAYOUT}")
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise ParamsError(_format_errors(err, source)) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping (plain YAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ParamsError(f"line {key_node.start_mark.line + 1}: key {key!r} is given twice in one mapping "
                                  f"(first at line {seen[key]}); keep one")
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> Any:
    """The YAML at ``path``; a ParamsError naming the file and line for bad YAML or a repeated key."""
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except ParamsError as err:
        raise ParamsError(f"{path}: {err}") from None
    except yaml.YAMLError as err:
        raise ParamsError(f"{path} is not valid YAML: {err}") from None
    except UnicodeDecodeError as err:
        raise ParamsError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start})") from None


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"params file not found: {path}")
    raw = read_yaml(path)
    if raw is None:
        raise ParamsError(f"{path} is empty: it must name at least the rows to train ('rows'); "
                          f"see the params.yaml of the repository")
    return parse_params(raw, str(path))
