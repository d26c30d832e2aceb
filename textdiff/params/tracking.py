"""Where the stages log to wandb (textdiff/tracking.py)."""

from __future__ import annotations

from typing import Literal

from textdiff.params.base import Section


class TrackingParams(Section):
    wandb_mode: Literal["offline", "online", "disabled"] = "offline"
    project: str = "textdiff"
