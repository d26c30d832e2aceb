"""Gaussian diffusion for every continuous space (embeddings, encodings, latents).

x_t = √ᾱ(t)·x0 + √(1−ᾱ(t))·ε. Training draws t = i/T with i in {0..T−1};
the reverse step goes between any two times s < t, so samplers can use fewer
steps than training did.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from textdiff.processes.schedules import alpha_bar

PARAMETRISATIONS = ("x0", "eps", "v")


def _bcast(a: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) → (B, 1, …, 1) in the dtype of ``like``."""
    return a.to(like.dtype).view(-1, *([1] * (like.dim() - 1)))


@dataclass(frozen=True)
class GaussianProcess:
    schedule: str = "sqrt"
    num_train_timesteps: int = 2000  # training T
    tan_d: float = 9.0

    def alpha_bar(self, t: torch.Tensor) -> torch.Tensor:
        return alpha_bar(self.schedule, t, self.tan_d)

    def coefficients(self, t: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(α, σ) = (√ᾱ, √(1−ᾱ)) broadcast against ``like``."""
        ab = self.alpha_bar(t)
        return _bcast(ab.sqrt(), like), _bcast((1 - ab).sqrt(), like)

    # ----------------------------------------------------------------- forward

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        alpha, sigma = self.coefficients(t, x0)
        return alpha * x0 + sigma * noise

    def sample_times(self, batch: int, generator: torch.Generator | None = None, device=None,
                     low_discrepancy: bool = False) -> torch.Tensor:
        """t = i/T with i uniform in {0..T−1}; ``low_discrepancy`` stratifies the batch over [0, 1)."""
        u = torch.rand(batch, generator=generator, device=device, dtype=torch.float64)
        if low_discrepancy:
            u = (u[:1] + torch.arange(batch, device=device, dtype=torch.float64) / batch) % 1.0
        return torch.floor(u * self.num_train_timesteps) / self.num_train_timesteps

    # ----------------------------------------------------------------- parametrisations

    def x0_from(self, output: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, parametrisation: str) -> torch.Tensor:
        alpha, sigma = self.coefficients(t, x_t)
        if parametrisation == "x0":
            return output
        if parametrisation == "eps":
            return (x_t - sigma * output) / alpha
        if parametrisation == "v":
            return alpha * x_t - sigma * output
        raise ValueError(f"unknown parametrisation {parametrisation!r}; known: {PARAMETRISATIONS}")

    def eps_from_x0(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        alpha, sigma = self.coefficients(t, x_t)
        return (x_t - alpha * x0) / sigma

    def target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, parametrisation: str) -> torch.Tensor:
        """What the network regresses on: x0, ε, or v = α·ε − σ·x0."""
        alpha, sigma = self.coefficients(t, x0)
        if parametrisation == "x0":
            return x0
        if parametrisation == "eps":
            return noise
        if parametrisation == "v":
            return alpha * noise - sigma * x0
        raise ValueError(f"unknown parametrisation {parametrisation!r}; known: {PARAMETRISATIONS}")

    # ----------------------------------------------------------------- reverse

    def posterior(self, x_t: torch.Tensor, x0: torch.Tensor, t: torch.Tensor,
                  s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of q(x_s | x_t, x0) for s < t."""
        ab_t, ab_s = self.alpha_bar(t), self.alpha_bar(s)
        a_ts = ab_t / ab_s  # ᾱ of the step from s to t
        coef_x0 = ab_s.sqrt() * (1 - a_ts) / (1 - ab_t)
        coef_xt = a_ts.sqrt() * (1 - ab_s) / (1 - ab_t)
        var = (1 - a_ts) * (1 - ab_s) / (1 - ab_t)
        mean = _bcast(coef_x0, x0) * x0 + _bcast(coef_xt, x_t) * x_t
        return mean, _bcast(var, x_t)

    def ddim_step(self, x_t: torch.Tensor, x0: torch.Tensor, t: torch.Tensor, s: torch.Tensor, eta: float,
                  noise: torch.Tensor) -> torch.Tensor:
        """DDIM from t to s: η = 0 is deterministic, η = 1 samples the DDPM posterior."""
        eps = self.eps_from_x0(x0, x_t, t)
        _, var = self.posterior(x_t, x0, t, s)
        sigma2 = eta ** 2 * var
        ab_s = _bcast(self.alpha_bar(s), x_t)
        return ab_s.sqrt() * x0 + (1 - ab_s - sigma2).clamp(min=0).sqrt() * eps + sigma2.sqrt() * noise
