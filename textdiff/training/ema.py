"""Exponential moving average of the weights, used for sampling and likelihood.

The decay ramps up as min(decay, (1 + step) / (10 + step)), so a short CPU run
averages roughly its last tenth of steps and a long run settles at ``decay``
(MDLM/SEDD/LD4LG use 0.9999 over hundreds of thousands of steps).
"""

from __future__ import annotations

import torch


class EMA:
    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def decay_at(self, step: int) -> float:
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        """Fold in the weights after optimizer step ``step`` (0-based)."""
        d = self.decay_at(step)
        for k, v in model.state_dict().items():
            if v.is_floating_point():
                self.shadow[k].lerp_(v.detach(), 1.0 - d)
            else:
                self.shadow[k].copy_(v)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.contiguous() for k, v in self.shadow.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for k, v in state.items():
            self.shadow[k].copy_(v)

    def swap_into(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """Load the averaged weights into ``model``; return the raw weights it held."""
        raw = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.shadow)
        return raw
