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


class Section(BaseModel):
    """Base of every params section: unknown keys are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


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


class BackboneParams(Section):
    d_model: int = Field(192, ge=8)
    n_layers: int = Field(4, ge=1)
    n_heads: int = Field(6, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1)
    seq_len: int = Field(64, ge=4, description="maximum tokens per sequence incl. BOS/EOS")
    positions: Literal["rotary", "learned"] = Field(
        "learned", description="learned absolute position embeddings (GPT-2, BERT: the AR, Diffusion-LM, SSD-LM and "
                               "autoencoder references) or rotary (RoPE: the SEDD/MDLM backbones; params.yaml sets "
                               "it for the discrete rows, whose bidirectional denoiser with learned positions stayed "
                               "on the unigram plateau — issue 14)")

    @model_validator(mode="after")
    def _heads_divide(self) -> "BackboneParams":
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        return self


class TrainParams(Section):
    """One trained component. Under a FLOP budget (``budget.train_flops``) ``steps`` is derived:
    floor(budget_share × train_flops / FLOPs per step), and the warmup is min(warmup_steps, steps // 10)
    (textdiff.training.flops.budgeted)."""

    steps: int = Field(600, ge=1, description="optimizer steps; replaced by the derived count under a FLOP budget")
    batch_size: int = Field(64, ge=1)
    lr: float = Field(1e-3, gt=0)
    warmup_steps: int = Field(50, ge=0, description="linear warmup; under a budget capped at a tenth of the steps")
    budget_share: float | None = Field(
        None, gt=0, le=1, description="fraction of the row's budget.train_flops this component trains with; "
                                      "null = 1 (the row's only trained component)")
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    weight_decay: float = Field(0.1, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    max_minutes: float = Field(6.0, gt=0, description="wall-clock budget; training stops early past it")
    checkpoint_every: int = Field(100, ge=1)
    log_every: int = Field(10, ge=1)
    ema_decay: float = Field(0.0, ge=0, lt=1, description="EMA of the weights for sampling and likelihood "
                                                          "(textdiff/training/ema.py); 0 = off")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="autocast of the training forward: auto = bf16 on CUDA, fp32 on CPU; bf16 on CPU uses "
                            "avx512_bf16 where the CPU has it (benchmarks/train_throughput.py --precision)")


class ARSampleParams(Section):
    num_samples: int = Field(512, ge=2, description="at least 2: diversity and intervals need pairs")
    batch_size: int = Field(128, ge=1)
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    use_cache: bool = True


TokenSpace = Literal["tokens"]
SPACE_FIELD = Field("tokens", description="the row's diffusion space: these rows work on the project tokenizer's ids")


class ARParams(Section):
    space: TokenSpace = SPACE_FIELD
    model: BackboneParams = Field(default_factory=BackboneParams)
    train: TrainParams = Field(default_factory=TrainParams)
    sample: ARSampleParams = Field(default_factory=ARSampleParams)


class DiffusionParams(Section):
    """The Gaussian process and how the denoiser is trained on it."""

    schedule: Literal["sqrt", "cosine", "linear", "tan_d"] = "sqrt"
    steps: int = Field(2000, ge=2, description="training T; sampling may use fewer steps")
    tan_d: float = Field(9.0, gt=0, description="d of the tan_d schedule")
    parametrisation: Literal["x0", "eps", "v"] = "x0"
    self_condition: float = Field(0.5, ge=0, le=1, description="probability of a self-conditioned training pass")
    timesteps: Literal["uniform", "low_discrepancy"] = "uniform"


class ContinuousSampleParams(Section):
    """The shared Gaussian reverse loop (textdiff.sampling.gaussian_sampler)."""

    num_samples: int = Field(512, ge=2, description="at least 2: diversity and intervals need pairs")
    batch_size: int = Field(128, ge=1)
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
    space: TokenSpace = SPACE_FIELD
    model: EmbeddingModelParams = Field(default_factory=EmbeddingModelParams)
    train: TrainParams = Field(default_factory=TrainParams)
    sample: GaussianSampleParams = Field(default_factory=GaussianSampleParams)


class MaskedModelParams(BackboneParams):
    """The MDLM denoiser and its absorbing process."""

    schedule: Literal["loglinear", "geometric", "cosine"] = "loglinear"
    time_conditioning: bool = Field(False, description="MDLM needs no t; without it the sampler can cache")


class MaskedSampleParams(Section):
    num_samples: int = Field(512, ge=2, description="at least 2: diversity and intervals need pairs")
    batch_size: int = Field(128, ge=1)
    steps: int = Field(128, ge=1, description="reverse steps (the last one reveals every remaining mask)")
    use_cache: bool = Field(True, description="skip the denoiser when no token changed (needs no t input)")


class MDLMParams(Section):
    space: TokenSpace = SPACE_FIELD
    model: MaskedModelParams = Field(default_factory=MaskedModelParams)
    train: TrainParams = Field(default_factory=TrainParams)
    sample: MaskedSampleParams = Field(default_factory=MaskedSampleParams)


class D3PMModelParams(BackboneParams):
    """The D3PM denoiser (time-conditioned, predicts x0) and its discrete-time process."""

    graph: Literal["uniform", "absorbing"] = "uniform"
    timesteps: int = Field(1000, ge=2, description="T, the number of discrete corruption steps")
    schedule: Literal["linear", "cosine"] = Field(
        "cosine", description="ᾱ_t: linear = 1 − t/T (β_t = 1/(T−t+1)) | cosine")
    hybrid_lambda: float = Field(0.01, ge=0, description="λ of the auxiliary x0 cross-entropy in L_λ")


class DiscreteSampleParams(Section):
    num_samples: int = Field(512, ge=2, description="at least 2: diversity and intervals need pairs")
    batch_size: int = Field(128, ge=1)
    steps: int = Field(128, ge=1, description="reverse steps (one denoiser call each); the last one denoises")


class D3PMParams(Section):
    space: TokenSpace = SPACE_FIELD
    model: D3PMModelParams = Field(default_factory=D3PMModelParams)
    train: TrainParams = Field(default_factory=TrainParams)
    sample: DiscreteSampleParams = Field(default_factory=DiscreteSampleParams)

    @model_validator(mode="after")
    def _steps_within_t(self) -> "D3PMParams":
        if self.sample.steps > self.model.timesteps:
            raise ValueError(f"sample.steps ({self.sample.steps}) exceeds model.timesteps ({self.model.timesteps})")
        return self


class SEDDModelParams(BackboneParams):
    """The SEDD score network (time-conditioned) and its continuous-time process."""

    graph: Literal["absorbing", "uniform"] = "absorbing"
    schedule: Literal["loglinear", "geometric", "cosine"] = "loglinear"

    @model_validator(mode="after")
    def _uniform_needs_finite_noise(self) -> "SEDDModelParams":
        if self.graph == "uniform" and self.schedule != "geometric":
            raise ValueError("the uniform graph needs schedule: geometric (its total noise must stay finite at t = 1)")
        return self


class SEDDSampleParams(DiscreteSampleParams):
    method: Literal["tweedie", "euler"] = Field("tweedie", description="tweedie τ-leaping | euler")


class SEDDParams(Section):
    space: TokenSpace = SPACE_FIELD
    model: SEDDModelParams = Field(default_factory=SEDDModelParams)
    train: TrainParams = Field(default_factory=TrainParams)
    sample: SEDDSampleParams = Field(default_factory=SEDDSampleParams)


class SimplexDiffusionParams(Section):
    """SSD-LM / TESS: Gaussian noise on the ±k logit simplex."""

    simplex_k: float = Field(5.0, gt=0, description="k of the ±k simplex; the forward noise is scaled by k")
    schedule: Literal["sqrt", "cosine", "linear", "tan_d"] = "cosine"
    steps: int = Field(1000, ge=2, description="training T; sampling may use fewer steps")
    tan_d: float = Field(9.0, gt=0)
    self_condition: float = Field(0.5, ge=0, le=1, description="probability of a self-conditioned training pass")
    timesteps: Literal["uniform", "low_discrepancy"] = "uniform"


class SimplexModelParams(BackboneParams):
    diffusion: SimplexDiffusionParams = Field(default_factory=SimplexDiffusionParams)


class SimplexSampleParams(Section):
    num_samples: int = Field(512, ge=2, description="at least 2: diversity and intervals need pairs")
    batch_size: int = Field(128, ge=1)
    steps: int = Field(50, ge=1, description="reverse steps, independent of the training T")
    projection: Literal["sample", "top_p"] = Field(
        "sample", description="back onto ±k each step: sample one token from the top-p nucleus | the nucleus multi-hot")
    top_p: float = Field(0.95, ge=0, le=1, description="nucleus mass of the projection; 0 keeps only the argmax")
    self_condition: bool = Field(True, description="feed the previous step's logits back (needs training with it)")


class SimplexParams(Section):
    space: TokenSpace = SPACE_FIELD
    model: SimplexModelParams = Field(default_factory=SimplexModelParams)
    train: TrainParams = Field(default_factory=TrainParams)
    sample: SimplexSampleParams = Field(default_factory=SimplexSampleParams)


class EncoderSpaceParams(Section):
    """Features of the frozen MiniLM, computed once by the space stage and standardised per dimension."""

    features: Literal["encodings", "embeddings"] = Field(
        "encodings", description="encodings: last hidden states | embeddings: MiniLM's input token embeddings")
    max_length: int = Field(64, ge=4, description="MiniLM WordPiece tokens per sentence incl. [CLS] and [SEP]")
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
    train: TrainParams = Field(default_factory=lambda: TrainParams(steps=300, batch_size=64, lr=1e-3, warmup_steps=30,
                                                                   weight_decay=0.0, max_minutes=10))


def _encoder_diffusion() -> DiffusionParams:
    return DiffusionParams(schedule="tan_d", steps=1000, tan_d=9.0, parametrisation="x0", self_condition=0.5)


class EncoderModelParams(BackboneParams):
    diffusion: DiffusionParams = Field(default_factory=_encoder_diffusion)


class EncoderParams(Section):
    """TEncDM: Gaussian diffusion on standardised frozen-encoder features, decoded by a trained decoder."""

    space: EncoderSpaceParams = Field(default_factory=EncoderSpaceParams)
    decoder: DecoderParams = Field(default_factory=DecoderParams)
    model: EncoderModelParams = Field(default_factory=EncoderModelParams)
    train: TrainParams = Field(default_factory=TrainParams)
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
    train: TrainParams = Field(default_factory=lambda: TrainParams(steps=3000, batch_size=64, lr=2e-3, warmup_steps=100,
                                                                   max_minutes=20))
    reconstruction: ReconstructionParams = Field(default_factory=ReconstructionParams)


def _latent_diffusion() -> DiffusionParams:
    return DiffusionParams(schedule="cosine", steps=1000, parametrisation="v", self_condition=0.5)


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

    space: LatentSpaceParams = Field(default_factory=LatentSpaceParams)
    model: LatentModelParams = Field(default_factory=LatentModelParams)
    train: TrainParams = Field(default_factory=TrainParams)
    sample: LatentSampleParams = Field(default_factory=LatentSampleParams)

    @model_validator(mode="after")
    def _canvas_is_the_latents(self) -> "LatentParams":
        if self.model.seq_len != self.space.num_latents:
            raise ValueError(f"model.seq_len ({self.model.seq_len}) must equal space.num_latents "
                             f"({self.space.num_latents}): the canvas is the latent vectors")
        return self


class StepsSweepParams(Section):
    """Generative perplexity and entropy of each discrete model against the number of sampling steps."""

    models: dict[str, str] = Field(default_factory=dict, description="rows to sweep -> family, as in models")
    steps: list[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [8, 32, 128, 512], min_length=1)
    num_samples: int = Field(64, ge=2)
    batch_size: int = Field(64, ge=1)


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
    train: TrainParams = Field(default_factory=lambda: TrainParams(steps=1000, batch_size=64, lr=2e-3,
                                                                   warmup_steps=100, weight_decay=0.1,
                                                                   max_minutes=20, checkpoint_every=250))


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
    work_pool: str = Field("textdiff-gpu", description="work pool of the GPU deployment")
    remote: str | None = Field(None, description="DVC remote shared by workers (null: local cache only)")
    sweep_jobs: int = Field(1, ge=1, description="DVC experiments run at once in an ablation sweep")


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


ROW_FAMILIES = {  # row (params section) -> family module in textdiff/families/
    "ar": "ar", "embedding": "embedding", "mdlm": "mdlm", "d3pm_uniform": "d3pm", "d3pm_absorb": "d3pm",
    "sedd_absorb": "sedd", "sedd_uniform": "sedd", "simplex": "simplex", "encoder": "encoder", "encoder_emb": "encoder",
    "latent_planner": "latent", "latent_ld4lg": "latent",
}
FAMILY_SECTIONS = tuple(ROW_FAMILIES)


def _d3pm(graph: str, schedule: str) -> D3PMParams:
    return D3PMParams(model=D3PMModelParams(graph=graph, schedule=schedule))


def _sedd(graph: str, schedule: str) -> SEDDParams:
    return SEDDParams(model=SEDDModelParams(graph=graph, schedule=schedule))


def _encoder(features: str) -> EncoderParams:
    return EncoderParams(space=EncoderSpaceParams(features=features))


def _latent(autoencoder: str) -> LatentParams:
    return LatentParams(space=LatentSpaceParams(autoencoder=autoencoder))


class Params(Section):
    seed: int = Field(0, ge=0, lt=2**31, description="one seed for every stage (numpy's RNG takes < 2**32)")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    train_processes: int = Field(1, ge=1, le=1024, description=(
        "data-parallel training processes on this machine (torchrun + DDP: one per GPU, gloo on CPU); "
        "the global train.batch_size is split across them and must be divisible by it"))
    models: dict[str, str] = Field(default_factory=lambda: {"ar": "ar"}, min_length=1,
                                   description="row -> its family module (textdiff/families/<family>.py)")
    data: DataParams = Field(default_factory=DataParams)
    tokenizer: TokenizerParams = Field(default_factory=TokenizerParams)
    ar: ARParams = Field(default_factory=ARParams)
    embedding: EmbeddingParams = Field(default_factory=EmbeddingParams)
    mdlm: MDLMParams = Field(default_factory=MDLMParams)
    d3pm_uniform: D3PMParams = Field(default_factory=lambda: _d3pm("uniform", "cosine"))
    d3pm_absorb: D3PMParams = Field(default_factory=lambda: _d3pm("absorbing", "linear"))
    sedd_absorb: SEDDParams = Field(default_factory=lambda: _sedd("absorbing", "loglinear"))
    sedd_uniform: SEDDParams = Field(default_factory=lambda: _sedd("uniform", "geometric"))
    simplex: SimplexParams = Field(default_factory=SimplexParams)
    encoder: EncoderParams = Field(default_factory=lambda: _encoder("encodings"))
    encoder_emb: EncoderParams = Field(default_factory=lambda: _encoder("embeddings"))
    latent_planner: LatentParams = Field(default_factory=lambda: _latent("planner"))
    latent_ld4lg: LatentParams = Field(default_factory=lambda: _latent("ld4lg"))
    space_decoders: list[str] = Field(default_factory=list,
                                      description="rows whose space has a trained decoder (its own stage)")
    steps_sweep: StepsSweepParams = Field(default_factory=StepsSweepParams)
    judge: JudgeParams = Field(default_factory=JudgeParams)
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    infill: InfillParams = Field(default_factory=InfillParams)
    control: ControlParams = Field(default_factory=ControlParams)
    report: ReportParams = Field(default_factory=ReportParams)
    tracking: TrackingParams = Field(default_factory=TrackingParams)
    orchestration: OrchestrationParams = Field(default_factory=OrchestrationParams)
    budget: BudgetParams = Field(default_factory=BudgetParams)

    @model_validator(mode="after")
    def _check_models(self) -> "Params":
        unknown = [m for m in self.models if m not in ROW_FAMILIES]
        if unknown:
            raise ValueError(f"models lists {unknown}; known rows: {list(ROW_FAMILIES)}")
        wrong = {row: fam for row, fam in self.models.items() if fam != ROW_FAMILIES[row]}
        if wrong:
            raise ValueError("models maps " + ", ".join(f"{r}: {f}" for r, f in wrong.items())
                             + "; each row's family is fixed: "
                             + ", ".join(f"{r}: {ROW_FAMILIES[r]}" for r in wrong))
        swept = {r: f for r, f in self.steps_sweep.models.items() if self.models.get(r) != f}
        if swept:
            raise ValueError(f"steps_sweep.models has {swept}: each entry must also be in models, with the same family")
        need_decoder = {r for r, f in self.models.items() if f == "encoder"}
        if set(self.space_decoders) != need_decoder:
            raise ValueError(f"space_decoders {self.space_decoders} must list exactly the encoder-space rows in "
                             f"models: {sorted(need_decoder)}")
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
        for row in self.models:
            batch = getattr(self, row).train.batch_size
            if batch % self.train_processes:
                raise ValueError(f"{row}.train.batch_size ({batch}) must be divisible by train_processes "
                                 f"({self.train_processes}): each process trains on an equal slice of the batch")
        return self

    @model_validator(mode="after")
    def _budget_shares(self) -> "Params":
        """Each row's component shares sum to 1; under a budget an enabled row of several components names
        every share (a single component's null share means 1)."""
        for row in FAMILY_SECTIONS:
            parts = train_components(getattr(self, row))
            shares = {f"{row}.{path}.budget_share": cfg.budget_share for path, cfg in parts.items()}
            if len(shares) == 1:
                key, share = next(iter(shares.items()))
                if share is not None and abs(share - 1) > 1e-6:
                    raise ValueError(f"{key} is {share}: the shares of one row's components must sum to 1, "
                                     f"and {row} trains one component (leave it null, which means 1)")
                continue
            unset = [k for k, v in shares.items() if v is None]
            needed = self.budget.train_flops is not None and row in self.models
            if unset and (needed or len(unset) < len(shares)):
                raise ValueError(f"{', '.join(unset)} not set: {row} trains {len(shares)} components "
                                 f"({', '.join(shares)}); give each its share of budget.train_flops, summing to 1")
            if not unset and abs(sum(shares.values()) - 1) > 1e-6:
                raise ValueError(" + ".join(f"{k} ({v})" for k, v in shares.items())
                                 + f" = {sum(shares.values()):.6g}: the shares of one row's components must sum to 1")
        return self

    def family(self, name: str) -> Section:
        if name not in self.models:
            raise ParamsError(f"model {name!r} is not enabled in params 'models' ({list(self.models)})")
        return getattr(self, name)


def _format_errors(err: ValidationError, source: str) -> str:
    lines = [f"invalid params in {source}:"]
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see textdiff/config.py for the schema)"
        got = e.get("input")
        shown = "" if e["type"] == "extra_forbidden" or isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"  {path}: {msg}{shown}")
    return "\n".join(lines)


def parse_params(raw: dict[str, Any], source: str = "params") -> Params:
    if not isinstance(raw, dict):
        raise ParamsError(f"invalid params in {source}: expected a mapping at the top level")
    try:
        params = Params.model_validate(raw)
    except ValidationError as err:
        raise ParamsError(_format_errors(err, source)) from None
    missing = [row for row in params.models if row not in raw]
    if missing:  # it would train silently at the schema's full-size defaults
        raise ParamsError(f"invalid params in {source}: models lists {', '.join(missing)} without a params section; "
                          f"add a `{missing[0]}:` section (its model, train and sample keys) or drop the row")
    return params


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
        raise ParamsError(f"{path} is empty: it must name at least the rows to train ('models'); "
                          f"see the params.yaml of the repository")
    return parse_params(raw, str(path))
