"""The training pass shared by the Gaussian families (embedding, encoder, latent): noise x0 to time t,
run the denoiser (fed its own detached x̂0 with the self-conditioning probability) and score its output
against the parametrisation's target (x0, ε or v)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from textdiff.params.shared import DiffusionParams
from textdiff.nn import Transformer
from textdiff.processes.gaussian import GaussianProcess
from textdiff.training.self_conditioning import self_condition_input


@dataclass
class DenoisingPass:
    t: torch.Tensor
    noise: torch.Tensor
    x_t: torch.Tensor
    out: torch.Tensor  # the denoiser's raw output (in the parametrisation's units)
    squared_error: torch.Tensor  # (out − target)², elementwise


def sample_times(process: GaussianProcess, diff: DiffusionParams, x0: torch.Tensor) -> torch.Tensor:
    return process.sample_times(x0.shape[0], device=x0.device, low_discrepancy=diff.time_sampling == "low_discrepancy")


def denoising_pass(denoiser: Transformer, process: GaussianProcess, diff: DiffusionParams, x0: torch.Tensor,
                   t: torch.Tensor) -> DenoisingPass:
    noise = torch.randn_like(x0)
    x_t = process.q_sample(x0, t, noise)
    self_cond = None
    if denoiser.self_cond_proj is not None:
        self_cond = self_condition_input(
            lambda sc: process.x0_from(denoiser(x_t, t, sc), x_t, t, diff.parametrisation), x0, diff.self_condition)
    out = denoiser(x_t, t, self_cond)
    return DenoisingPass(t, noise, x_t, out, (out - process.target(x0, noise, t, diff.parametrisation)) ** 2)
