"""What every training and sampling stage reads besides its own row: the seed, the device, the processes, the
FLOP budget and where it logs. A stage that reads only these and its row (textdiff.params.reading) depends on no
other section's schema, so editing the report's or the orchestration's schema re-runs none of them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from textdiff.params.base import Section
from textdiff.params.tracking import TrackingParams


class BudgetParams(Section):
    """Compute-matched rows (DESIGN §9): every row trains with the same FLOPs, autoencoders and decoders
    included; each component's ``train.budget_share`` splits its row's budget and sets its steps."""

    train_flops: float | None = Field(
        None, gt=0, description="training FLOPs per row (forward + backward, textdiff.training.flops); "
                                "null = every component trains its written steps")


class RunParams(Section):
    seed: int = Field(0, ge=0, lt=2**31, description="one seed for every stage (numpy's RNG takes < 2**32)")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    train_processes: int = Field(1, ge=1, le=1024, description=(
        "data-parallel training processes on this machine (torchrun + DDP: one per GPU, gloo on CPU); "
        "the global train.batch_size is split across them and must be divisible by it"))
    budget: BudgetParams = Field(default_factory=BudgetParams)
    tracking: TrackingParams = Field(default_factory=TrackingParams)
