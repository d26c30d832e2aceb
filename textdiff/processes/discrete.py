"""Discrete diffusion over token ids: transition graphs and noise schedules.

A continuous-time process corrupts each token independently with rate σ(t)
along a transition graph Q; the total noise σ̄(t) = ∫₀ᵗ σ fixes the marginals:

- absorbing: a token becomes [MASK] with probability 1 − e^{−σ̄(t)} and stays so;
- uniform: a token is resampled uniformly with probability 1 − e^{−σ̄(t)}
  (it may land on itself).

Schedules give σ̄(t) and its rate σ(t) = dσ̄/dt for t in [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


# --------------------------------------------------------------------------- schedules


@dataclass(frozen=True)
class LogLinear:
    """σ̄(t) = −log(1 − (1−ε)t): the masked fraction grows linearly, 1 − e^{−σ̄} = (1−ε)t."""

    eps: float = 1e-3

    def total(self, t: torch.Tensor) -> torch.Tensor:
        return -torch.log1p(-(1 - self.eps) * t)

    def rate(self, t: torch.Tensor) -> torch.Tensor:
        return (1 - self.eps) / (1 - (1 - self.eps) * t)


@dataclass(frozen=True)
class Geometric:
    """σ̄(t) = σ_min^{1−t}·σ_max^t (SEDD's choice for the uniform graph)."""

    sigma_min: float = 1e-4
    sigma_max: float = 20.0

    def total(self, t: torch.Tensor) -> torch.Tensor:
        return self.sigma_min ** (1 - t) * self.sigma_max ** t

    def rate(self, t: torch.Tensor) -> torch.Tensor:
        return self.total(t) * math.log(self.sigma_max / self.sigma_min)


@dataclass(frozen=True)
class Cosine:
    """e^{−σ̄(t)} = (1−ε)·cos(πt/2) + ε: nothing is corrupted at t = 0, a fraction 1−ε at t = 1."""

    eps: float = 1e-3

    def total(self, t: torch.Tensor) -> torch.Tensor:
        return -torch.log((1 - self.eps) * torch.cos(math.pi * t / 2) + self.eps)

    def rate(self, t: torch.Tensor) -> torch.Tensor:
        keep = (1 - self.eps) * torch.cos(math.pi * t / 2) + self.eps
        return (1 - self.eps) * math.pi / 2 * torch.sin(math.pi * t / 2) / keep


DISCRETE_SCHEDULES = {"loglinear": LogLinear, "geometric": Geometric, "cosine": Cosine}


def discrete_schedule(name: str):
    if name not in DISCRETE_SCHEDULES:
        raise ValueError(f"unknown discrete noise schedule {name!r}; known: {sorted(DISCRETE_SCHEDULES)}")
    return DISCRETE_SCHEDULES[name]()


# --------------------------------------------------------------------------- graphs


@dataclass(frozen=True)
class Absorbing:
    """Every token jumps to [MASK] (``mask_id``) at rate σ; [MASK] never leaves."""

    vocab_size: int
    mask_id: int

    def corrupt(self, x0: torch.Tensor, total_noise: torch.Tensor, generator=None) -> torch.Tensor:
        p = -torch.expm1(-_bcast(total_noise, x0))
        hit = torch.rand(x0.shape, generator=generator, device=x0.device, dtype=torch.float64) < p
        return torch.where(hit, torch.full_like(x0, self.mask_id), x0)

    def transition_matrix(self, beta: float) -> torch.Tensor:
        """One discrete step: stay with probability 1 − β, else jump to [MASK]."""
        q = torch.eye(self.vocab_size, dtype=torch.float64) * (1 - beta)
        q[:, self.mask_id] += beta
        q[self.mask_id] = 0
        q[self.mask_id, self.mask_id] = 1
        return q


@dataclass(frozen=True)
class Uniform:
    """Every token is resampled uniformly over the ``vocab_size`` tokens at rate σ."""

    vocab_size: int

    def corrupt(self, x0: torch.Tensor, total_noise: torch.Tensor, generator=None) -> torch.Tensor:
        p = -torch.expm1(-_bcast(total_noise, x0))
        hit = torch.rand(x0.shape, generator=generator, device=x0.device, dtype=torch.float64) < p
        noise = torch.randint(0, self.vocab_size, x0.shape, generator=generator, device=x0.device)
        return torch.where(hit, noise, x0)

    def transition_matrix(self, beta: float) -> torch.Tensor:
        """One discrete step: keep with probability 1 − β, else draw uniformly (possibly itself)."""
        return torch.eye(self.vocab_size, dtype=torch.float64) * (1 - beta) + beta / self.vocab_size


def _bcast(a: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return a.double().view(-1, *([1] * (like.dim() - 1)))
