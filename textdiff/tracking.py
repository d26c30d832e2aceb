"""Experiment tracking: wandb (offline unless params say otherwise) plus plain files."""

from __future__ import annotations

import os
from pathlib import Path


class Tracker:
    """A thin wandb run; ``mode='disabled'`` makes every call a no-op inside wandb itself."""

    def __init__(self, name: str, config: dict, mode: str = "offline", project: str = "textdiff",
                 folder: str | Path = "logs", tags: list[str] | None = None, group: str | None = None,
                 job_type: str | None = None):
        os.environ.setdefault("WANDB_SILENT", "true")
        if mode != "online":  # before wandb reads its settings: its own telemetry otherwise looks up its server
            os.environ.update(WANDB_MODE=mode, WANDB_ERROR_REPORTING="false")
        import wandb

        Path(folder).mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project=project, name=name, config=config, mode=mode, dir=str(folder),
                              tags=tags or [], group=group, job_type=job_type, reinit="finish_previous")

    def log(self, values: dict, step: int) -> None:
        self.run.log(values, step=step)

    def summary(self, values: dict) -> None:
        for k, v in values.items():
            self.run.summary[k] = v

    def finish(self) -> None:
        self.run.finish()
