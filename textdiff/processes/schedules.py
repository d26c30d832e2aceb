"""Noise schedules for Gaussian diffusion, as ᾱ(t) for continuous t in [0, 1].

ᾱ is the signal variance: x_t = √ᾱ(t)·x0 + √(1−ᾱ(t))·ε. A discrete training
grid of T steps uses t = i/T; a sampler may use any subset of times, so
sampling steps are independent of the training T.
"""

from __future__ import annotations

import math

import torch

MIN_ALPHA_BAR = 1e-7


def sqrt_schedule(t: torch.Tensor, s: float = 1e-4) -> torch.Tensor:
    """Diffusion-LM: ᾱ(t) = 1 − √(t + s)."""
    return 1 - torch.sqrt(t + s)


def cosine_schedule(t: torch.Tensor, s: float = 0.008) -> torch.Tensor:
    """Nichol & Dhariwal: ᾱ(t) = cos²(((t + s)/(1 + s))·π/2) / cos²((s/(1 + s))·π/2)."""
    f = lambda u: torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    return f(t) / f(torch.zeros_like(t))


def linear_schedule(t: torch.Tensor, beta_min: float = 0.1, beta_max: float = 20.0) -> torch.Tensor:
    """DDPM's linear β (1e-4 → 0.02 over 1000 steps) in continuous time:
    ᾱ(t) = exp(−β_min·t − ½(β_max − β_min)·t²)."""
    return torch.exp(-beta_min * t - 0.5 * (beta_max - beta_min) * t ** 2)


def tan_schedule(t: torch.Tensor, d: float = 9.0) -> torch.Tensor:
    """TEncDM's tan-d: α_t = 1/√(1 + d²·tan²(πt/2)), so ᾱ(t) = 1/(1 + d²·tan²(πt/2))."""
    return 1 / (1 + d ** 2 * torch.tan(math.pi * t / 2) ** 2)


SCHEDULES = {"sqrt": sqrt_schedule, "cosine": cosine_schedule, "linear": linear_schedule, "tan_d": tan_schedule}


def alpha_bar(name: str, t: torch.Tensor, tan_d: float = 9.0) -> torch.Tensor:
    """ᾱ(t) of the named schedule, kept inside (0, 1] so that every conversion is finite."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown noise schedule {name!r}; known: {sorted(SCHEDULES)}")
    t = t.double().clamp(0, 1)
    value = tan_schedule(t, tan_d) if name == "tan_d" else SCHEDULES[name](t)
    return value.clamp(MIN_ALPHA_BAR, 1.0)
