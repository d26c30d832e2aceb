"""How rows are scored: the evaluate stages and the judge LM that scores every row's samples."""

from __future__ import annotations

from pydantic import Field

from textdiff.params.base import Section
from textdiff.params.shared import BackboneParams, TrainParams


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
