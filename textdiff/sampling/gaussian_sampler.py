"""The reverse loop for every continuous family (DDPM ancestral and DDIM).

The loop knows nothing of spaces or models: it gets ``denoise(x_t, t,
self_cond) -> x̂0`` and a process, walks a grid of ``steps`` times from the
noisiest training time to 0 (independent of the training T), and applies
three hooks at every step:

- ``denoised_fn(x̂0, step_index) -> x̂0``: e.g. clamping to the nearest embeddings;
- ``guidance(x̂0, t) -> score`` (one scalar per sequence): its gradient, times
  ``guidance_scale``, is added to x̂0 (``guidance_on='x0'``) or to the step's
  mean through the model (``'x_t'``);
- ``infill=(mask, x0_known)``: positions where ``mask`` is true are held at their
  clean values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from textdiff.processes.gaussian import GaussianProcess, _bcast
from textdiff.sampling.grid import continuous_times

Denoise = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


@dataclass
class SamplerConfig:
    steps: int = 50
    method: str = "ddpm"  # ddpm | ddim
    eta: float = 0.0  # DDIM only
    self_condition: bool = True
    guidance_scale: float = 0.0
    guidance_on: str = "x0"  # x0 | x_t


def sampler_config(params, denoiser) -> SamplerConfig:
    """The loop's settings from a row's sample params (``ContinuousSampleParams``): self-conditioning at
    sampling only where the denoiser was trained with its self-conditioning input."""
    return SamplerConfig(steps=params.steps, method=params.method, eta=params.eta,
                         self_condition=params.self_condition and denoiser.self_cond_proj is not None)


def time_grid(process: GaussianProcess, steps: int, device=None) -> torch.Tensor:
    """``steps`` times from the noisiest training time (T−1)/T down to 0: one denoiser call at each,
    the last giving x̂0 (so ``steps`` − 1 moves on the shared grid, textdiff.sampling.grid)."""
    return continuous_times(steps - 1, start=(process.num_train_timesteps - 1) / process.num_train_timesteps, device=device)


def ddpm_step(process: GaussianProcess, x: torch.Tensor, x0: torch.Tensor, t: torch.Tensor, s: torch.Tensor,
              noise: torch.Tensor, cfg: SamplerConfig, grad_xt: torch.Tensor | None = None) -> torch.Tensor:
    """Ancestral: a draw from the posterior q(x_s | x_t, x̂0), its mean moved by guidance on x_t if given."""
    mean, var = process.posterior(x, x0, t, s)
    if grad_xt is not None:
        mean = mean + cfg.guidance_scale * var * grad_xt
    return mean + var.sqrt() * noise


def ddim_step(process: GaussianProcess, x: torch.Tensor, x0: torch.Tensor, t: torch.Tensor, s: torch.Tensor,
              noise: torch.Tensor, cfg: SamplerConfig, grad_xt: torch.Tensor | None = None) -> torch.Tensor:
    """DDIM with noise ``cfg.eta`` (0: deterministic); guidance on x_t is not applied here."""
    return process.ddim_step(x, x0, t, s, cfg.eta, noise)


STEPS = {"ddpm": ddpm_step, "ddim": ddim_step}  # sample.method: the reverse step between two times


def sample(denoise: Denoise, process: GaussianProcess, shape: tuple[int, ...], cfg: SamplerConfig, *,
           generator: torch.Generator | None = None, device=None,
           denoised_fn: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
           guidance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
           infill: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Run the reverse process and return the final x̂0."""
    if cfg.method not in STEPS:
        raise ValueError(f"unknown sampling method {cfg.method!r} ({' | '.join(STEPS)})")
    if cfg.steps < 1:
        raise ValueError("sampling needs at least one step")
    x = torch.randn(shape, generator=generator, device=device)
    times = time_grid(process, cfg.steps, device)
    self_cond = torch.zeros(shape, device=device) if cfg.self_condition else None
    x0 = x
    for k in range(cfg.steps):
        t = times[k].expand(shape[0])
        if infill is not None:
            x = torch.where(infill[0][..., None], infill[1], x)
        guide_xt = guidance is not None and cfg.guidance_scale and cfg.guidance_on == "x_t"
        with torch.enable_grad() if guide_xt else torch.no_grad():
            x_in = x.detach().requires_grad_(guide_xt)
            x0 = denoise(x_in, t, self_cond)
            if guide_xt:
                grad_xt = torch.autograd.grad(guidance(x0, t).sum(), x_in)[0]
        x0 = x0.detach()
        if guidance is not None and cfg.guidance_scale and cfg.guidance_on == "x0":
            with torch.enable_grad():
                x0_req = x0.clone().requires_grad_(True)
                x0 = x0 + cfg.guidance_scale * torch.autograd.grad(guidance(x0_req, t).sum(), x0_req)[0]
        if denoised_fn is not None:
            x0 = denoised_fn(x0, k)
        if infill is not None:
            x0 = torch.where(infill[0][..., None], infill[1], x0)
        if cfg.self_condition:
            self_cond = x0
        if k == cfg.steps - 1:
            break
        s = times[k + 1].expand(shape[0])
        noise = torch.randn(shape, generator=generator, device=device)
        x = STEPS[cfg.method](process, x, x0, t, s, noise, cfg, grad_xt if guide_xt else None)
    if infill is not None:
        x0 = torch.where(infill[0][..., None], infill[1], x0)
    return x0
