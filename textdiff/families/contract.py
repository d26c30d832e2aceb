"""The family contract as code: what every module in textdiff/families/ offers the stages, the API and the tests.

A family is a module, not a class (each reads top to bottom in one file), so the contract is a Protocol that
a module satisfies by its attributes; tests/test_family_contract.py checks every family against it, keyword by
keyword, and tests/test_family_roundtrip.py runs each row of params.yaml through it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

# Every family's sample_texts returns these in its speed dict (metrics/sample/ROW.json): one set of speed and
# network-call keys for every row.
SAMPLE_SPEED_KEYS = ("wall_s", "samples_per_s", "tokens_per_s", "nfe", "decoder_nfe", "sample_flops_per_sample")

# What the stages pass by keyword (stages/train.py, sample.py, likelihood.py).
FIT_KEYWORDS = ("seed", "device", "checkpoint_dir", "fingerprint", "log", "space_dir", "budget_flops")
SAMPLE_KEYWORDS = ("seed", "device", "space_dir")
LIKELIHOOD_KEYWORDS = ("device", "batch_size", "draws", "seed")


@runtime_checkable
class Family(Protocol):
    PARAMS: type  # the row section's schema (textdiff/config.py)
    CANNOT_INFILL: str | None  # None, or why the family cannot hold known tokens
    CANNOT_GUIDE: str | None  # None, or why the family cannot be steered by the attribute classifier

    def build(self, params: Any, vocab: Any = None) -> torch.nn.Module: ...

    def fit(self, params: Any, tokenizer: Any, train_texts: list[str], *, seed: int, device: torch.device,
            checkpoint_dir: Path | None, fingerprint: str, log: Any = None, space_dir: Path | None = None,
            budget_flops: float | None = None, **more: Any) -> tuple[torch.nn.Module, Any]: ...

    def sample_texts(self, model: torch.nn.Module, tokenizer: Any, params: Any, *, seed: int,
                     device: torch.device, space_dir: Path | None = None) -> tuple[list[str], dict]: ...

    def likelihood(self, model: torch.nn.Module, tokenizer: Any, texts: list[str], *, device: torch.device,
                   batch_size: int = 64, draws: int = 16, seed: int = 0) -> dict: ...


def can_draw_canvas(family: Any) -> bool:
    """A family that can infill or be guided offers ``draw_canvas`` (textdiff.tasks); one that can do neither
    need not."""
    return family.CANNOT_INFILL is None or family.CANNOT_GUIDE is None
