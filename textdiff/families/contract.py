"""The family contract as code: what every module in textdiff/families/ offers the stages, the API and the tests.

A family is a module, not a class (each reads top to bottom in one file), so the contract is a Protocol that
a module satisfies by its attributes; tests/test_family_contract.py checks every family against it (the positional
calls and the likelihood's keywords), and tests/test_family_roundtrip.py runs each row of params.yaml through it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

import torch

from textdiff.spaces.registry import TokenSpace

# Every family's sample_texts returns these in its speed dict (metrics/sample/ROW.json): one set of speed and
# network-call keys for every row.
SAMPLE_SPEED_KEYS = ("wall_s", "samples_per_s", "tokens_per_s", "nfe", "decoder_nfe", "sample_flops_per_sample")

# What the stages pass by keyword to ``likelihood`` (stages/likelihood.py); ``fit`` and ``sample_texts`` take a
# RunContext instead.
LIKELIHOOD_KEYWORDS = ("device", "batch_size", "draws", "seed")


@dataclass(frozen=True)
class RunContext:
    """What a stage hands a family besides its params and data: seed and device, the row's space (loaded by
    ``textdiff.spaces.registry``; token rows get the empty token space), and for training where to checkpoint,
    the fingerprint that lets a run resume, the logger and the FLOP budget that sets the steps."""

    seed: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    space: Any = field(default_factory=TokenSpace)
    checkpoint_dir: Path | None = None
    fingerprint: str = ""
    log: Callable | None = None
    budget_flops: float | None = None
    progress: bool = True
    stop_after: int | None = None  # stop after this many steps (tests, fault injection)
    curve_probe: Callable | None = None  # model -> {figure: value}: a cheap held-out figure along training
    curve_at: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0)  # the fractions of the steps where it is measured

    def loop_options(self) -> dict:
        """The keywords ``textdiff.training.loop.train`` takes from the run."""
        return dict(checkpoint_dir=self.checkpoint_dir, fingerprint=self.fingerprint, device=self.device,
                    log=self.log, progress=self.progress, stop_after=self.stop_after, budget_flops=self.budget_flops,
                    curve_probe=self.curve_probe, curve_at=self.curve_at)


@runtime_checkable
class Family(Protocol):
    PARAMS: type  # the row section's schema (textdiff/config.py)
    CANNOT_INFILL: str | None  # None, or why the family cannot hold known tokens
    CANNOT_GUIDE: str | None  # None, or why the family cannot be steered by the attribute classifier
    LIKELIHOOD_FOOTING: str | None  # what its held-out likelihood pays for: "canvas", "tokens", or None (none)
    context_probe: Callable | None  # (model, x0 canvases, generator) -> {"probe", "value", …}, or None
    cache_wall_clock: Callable | None  # (model, num, steps, seed, device) -> the sampler timed with its network
    #                                    cache against without, same samples (MDLM's claim); None: no such cache

    def build(self, params: Any, vocab: Any = None) -> torch.nn.Module: ...

    def fit(self, params: Any, tokenizer: Any, train_texts: list[str],
            run: RunContext) -> tuple[torch.nn.Module, Any]: ...

    def sample_texts(self, model: torch.nn.Module, tokenizer: Any, params: Any,
                     run: RunContext) -> tuple[list[str], dict]: ...

    def likelihood(self, model: torch.nn.Module, tokenizer: Any, texts: list[str], *, device: torch.device,
                   batch_size: int = 64, draws: int = 16, seed: int = 0) -> dict: ...


def can_draw_canvas(family: Any) -> bool:
    """A family that can infill or be guided offers ``draw_canvas`` (textdiff.tasks); one that can do neither
    need not."""
    return family.CANNOT_INFILL is None or family.CANNOT_GUIDE is None
