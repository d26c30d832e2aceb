"""Self-conditioning (Chen et al., Analog Bits), one mechanism for every continuous family.

Training: with probability p a first, no-grad pass estimates x̂0 from zeros;
the trained pass then sees that estimate as an extra input. Otherwise the extra
input is zeros. The coin is tossed per batch, so half the batches cost one pass.
Sampling feeds the previous step's x̂0 back (zeros on the first step): see
``textdiff.sampling.gaussian_sampler``.
"""

from __future__ import annotations

from typing import Callable

import torch


def self_condition_input(estimate_x0: Callable[[torch.Tensor], torch.Tensor], like: torch.Tensor,
                         probability: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """The extra input for a training pass: a detached x̂0 estimate, or zeros.

    ``estimate_x0(self_cond)`` runs the denoiser and returns x̂0.
    """
    zeros = torch.zeros_like(like)
    if probability <= 0 or torch.rand((), generator=generator).item() >= probability:
        return zeros
    with torch.no_grad():
        return estimate_x0(zeros).detach()
