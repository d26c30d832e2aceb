"""Classifier guidance shared by the samplers: a differentiable attribute score and its strength.

``Guidance.score(probs)`` takes a soft canvas, (B, L, V) token distributions, and returns
log p(label | canvas) per sequence (textdiff.tasks.attribute_classifier). Each family turns its
own state into a soft canvas:

- Gaussian rows (Diffusion-LM): softmax of the rounding logits of x̂0; the gradient is added to
  x̂0 at every reverse step (the gradient-on-x̂0 form of Diffusion-LM's plug-and-play control);
- simplex rows (SSD-LM): softmax of the predicted logits; the gradient is added to the logits;
- discrete rows: the denoiser's p_θ(x0 | x_t) (one-hot where a token is fixed) is tilted by the
  first-order expansion of the classifier around it (DiGress, Vignac et al. 2023, §4.3;
  also Nisonoff et al. 2024): p̃(x0) ∝ p_θ(x0 | x_t) · exp(γ ∂ log p(y | p)/∂p[x0]).

A strength of 0 is no guidance: the families then skip the classifier entirely, so guided
sampling at strength 0 gives the unguided samples bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch


@dataclass(frozen=True)
class Guidance:
    score: Callable[[torch.Tensor], torch.Tensor]  # (B, L, V) probabilities -> (B,) log p(label | canvas)
    strength: float

    @property
    def active(self) -> bool:
        return self.strength > 0


def active(guide: Guidance | None) -> bool:
    return guide is not None and guide.active


def gradient(fn, x: torch.Tensor) -> torch.Tensor:
    """∂ Σ fn(x) / ∂ x in float32, with no graph kept (callable inside ``torch.no_grad``)."""
    with torch.enable_grad():
        x = x.detach().float().requires_grad_(True)
        return torch.autograd.grad(fn(x).sum(), x)[0]


def score_gradient(guide: Guidance, probs: torch.Tensor) -> torch.Tensor:
    """∂ Σ log p(label | probs) / ∂ probs, (B, L, V)."""
    return gradient(guide.score, probs)


def tilted_log_probs(log_probs: torch.Tensor, guide: Guidance) -> torch.Tensor:
    """log p̃(x0) = log_softmax(log p_θ(x0) + γ·∇_p log p(y | p)) at every position (−inf stays −inf)."""
    grad = score_gradient(guide, log_probs.exp())
    return torch.log_softmax(log_probs + guide.strength * grad.to(log_probs.dtype), dim=-1)
