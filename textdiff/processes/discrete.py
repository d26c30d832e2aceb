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
#
# Each schedule gives the keep probability α(t) = e^{−σ̄(t)} and its derivative
# α′(t) directly, so that α(1) = 0 (a fully corrupted x_1, equal to the prior)
# stays finite in every formula written in α; ``total`` and ``rate`` (σ̄, σ) are
# for the formulas that need them and may be infinite at t = 1.


@dataclass(frozen=True)
class LogLinear:
    """α(t) = 1 − (1−ε)t: the masked fraction grows linearly; ε = 0 reaches the all-[MASK] prior at t = 1."""

    eps: float = 0.0

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        return 1 - (1 - self.eps) * t

    def alpha_rate(self, t: torch.Tensor) -> torch.Tensor:
        return torch.full_like(t, -(1 - self.eps))

    def total(self, t: torch.Tensor) -> torch.Tensor:
        return -torch.log1p(-(1 - self.eps) * t)

    def rate(self, t: torch.Tensor) -> torch.Tensor:
        return (1 - self.eps) / (1 - (1 - self.eps) * t)


@dataclass(frozen=True)
class Geometric:
    """σ̄(t) = σ_min^{1−t}·σ_max^t − σ_min (SEDD's choice for the uniform graph).

    SEDD's σ̄ starts at σ_min; subtracting it makes σ̄(0) = 0 exactly, so the ELBO
    integral from t = 0 needs no reconstruction term. σ̄(1) ≈ σ_max stays finite,
    which the uniform graph's score entropy needs (its rate multiplies every term).
    """

    sigma_min: float = 1e-4
    sigma_max: float = 20.0

    def total(self, t: torch.Tensor) -> torch.Tensor:
        return self.sigma_min ** (1 - t) * self.sigma_max ** t - self.sigma_min

    def rate(self, t: torch.Tensor) -> torch.Tensor:
        return self.sigma_min ** (1 - t) * self.sigma_max ** t * math.log(self.sigma_max / self.sigma_min)

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        return torch.exp(-self.total(t))

    def alpha_rate(self, t: torch.Tensor) -> torch.Tensor:
        return -self.rate(t) * self.alpha(t)


@dataclass(frozen=True)
class Cosine:
    """α(t) = (1−ε)·cos(πt/2) + ε: nothing is corrupted at t = 0, a fraction 1−ε at t = 1 (α(1) = ε
    exactly: cos(π/2) is 6e-17 in floating point, which on the absorbing graph would make the prior
    term infinite)."""

    eps: float = 0.0

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        keep = torch.where(t < 1, torch.cos(math.pi * t / 2), torch.zeros_like(t))
        return (1 - self.eps) * keep + self.eps

    def alpha_rate(self, t: torch.Tensor) -> torch.Tensor:
        return -(1 - self.eps) * math.pi / 2 * torch.sin(math.pi * t / 2)

    def total(self, t: torch.Tensor) -> torch.Tensor:
        return -torch.log(self.alpha(t))

    def rate(self, t: torch.Tensor) -> torch.Tensor:
        return -self.alpha_rate(t) / self.alpha(t)


def masked_weight(schedule, t: torch.Tensor) -> torch.Tensor:
    """−α′/(1−α): the continuous-time ELBO weight of a corrupted token (1/t for log-linear, ε = 0)."""
    return -schedule.alpha_rate(t) / (1 - schedule.alpha(t))


def antithetic_times(batch: int, device=None, generator=None) -> torch.Tensor:
    """t_i = (u + i/B) mod 1 for one uniform u: low-variance Monte-Carlo over t."""
    u = torch.rand(1, generator=generator, device=device, dtype=torch.float64)
    t = (u + torch.arange(batch, device=device, dtype=torch.float64) / batch) % 1.0
    return t.clamp(1e-5, 1.0)


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
        hit = _hits(x0, total_noise, generator)
        return torch.where(hit, torch.full_like(x0, self.mask_id), x0)

    def stationary(self, device=None) -> torch.Tensor:
        """The limit distribution m: all mass on [MASK]."""
        m = torch.zeros(self.vocab_size, dtype=torch.float64, device=device)
        m[self.mask_id] = 1
        return m

    def transition_matrix(self, beta: float) -> torch.Tensor:
        """One discrete step: stay with probability 1 − β, else jump to [MASK]."""
        return step_matrix(self, beta)


@dataclass(frozen=True)
class Uniform:
    """Every token is resampled uniformly over the ``vocab_size`` tokens at rate σ."""

    vocab_size: int

    def corrupt(self, x0: torch.Tensor, total_noise: torch.Tensor, generator=None) -> torch.Tensor:
        hit = _hits(x0, total_noise, generator)
        noise = torch.randint(0, self.vocab_size, x0.shape, generator=generator, device=x0.device)
        return torch.where(hit, noise, x0)

    def stationary(self, device=None) -> torch.Tensor:
        """The limit distribution m: uniform."""
        return torch.full((self.vocab_size,), 1 / self.vocab_size, dtype=torch.float64, device=device)

    def transition_matrix(self, beta: float) -> torch.Tensor:
        """One discrete step: keep with probability 1 − β, else draw uniformly (possibly itself)."""
        return step_matrix(self, beta)


def step_matrix(graph, beta: float) -> torch.Tensor:
    """Q = (1−β)·I + β·1mᵀ (rows: from, columns: to), explicit (V, V) in float64.

    Both graphs have this form with their stationary m, and products of such
    matrices keep it: Q̄_t = ᾱ_t·I + (1−ᾱ_t)·1mᵀ. The explicit matrices are for
    tests and small vocabularies; the models use the closed forms.
    """
    m = graph.stationary()
    return torch.eye(len(m), dtype=torch.float64) * (1 - beta) + beta * m[None, :]


def graph_for(name: str, vocab_size: int, mask_id: int | None):
    if name == "absorbing":
        if mask_id is None:
            raise ValueError("the absorbing graph needs a tokenizer with a <mask> token")
        return Absorbing(vocab_size, mask_id)
    if name == "uniform":
        return Uniform(vocab_size)
    raise ValueError(f"unknown transition graph {name!r}; known: ['absorbing', 'uniform']")


def _hits(x0: torch.Tensor, total_noise: torch.Tensor, generator) -> torch.Tensor:
    """Which tokens the process touches: each with probability 1 − e^{−σ̄} (σ̄ may be +inf)."""
    p = -torch.expm1(-total_noise.double().view(-1, *([1] * (x0.dim() - 1))))
    return torch.rand(x0.shape, generator=generator, device=x0.device, dtype=torch.float64) < p
