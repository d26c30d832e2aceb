"""The time grids the samplers walk, independent of the training T: continuous t in [0, 1] or integer steps."""

from __future__ import annotations

import torch


def continuous_times(steps: int, start: float = 1.0, device=None) -> torch.Tensor:
    """``steps`` + 1 evenly spaced float64 times from ``start`` down to 0: the ends of ``steps`` reverse steps."""
    return torch.linspace(start, 0.0, steps + 1, device=device, dtype=torch.float64)


def integer_times(num_train_timesteps: int, steps: int, device=None) -> torch.Tensor:
    """``steps`` + 1 decreasing integer times from T to 0 (distinct; fewer if steps > T)."""
    grid = torch.linspace(num_train_timesteps, 0, steps + 1, dtype=torch.float64).round().long()
    return torch.unique_consecutive(grid).to(device)
