"""The task stages' sections: the steps sweep, infilling, controlled generation and its guide."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from textdiff.params.base import Section


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
