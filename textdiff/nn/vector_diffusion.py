"""Gaussian diffusion over a canvas of continuous vectors that no token embedding defines: frozen-encoder
features (TEncDM, textdiff/families/encoder.py) and sentence latents (PLANNER, LD4LG, families/latent.py).

Both families are this model with a different vector size and space; the space (where the vectors come from
and how they become text) stays in the family module."""

from __future__ import annotations

import torch

from textdiff.losses.gaussian import denoising_pass, sample_times
from textdiff.nn.transformer import BackboneConfig, DenoiserModel, Transformer
from textdiff.processes.gaussian import GaussianProcess


class VectorDiffusion(DenoiserModel):
    """A bidirectional, time-conditioned backbone that reads and writes ``dim``-vectors, on the row's Gaussian
    process (``config.diffusion``), with the shared self-conditioning input when trained with it. ``config``: the
    row's model params, all the module is built from."""

    def __init__(self, config, dim: int):
        super().__init__()
        self.config, self.dim = config, dim
        diff = config.diffusion
        self.denoiser = Transformer(BackboneConfig.from_params(
            config, causal=False, input_dim=dim, output_dim=dim, time_conditioning=True,
            self_cond_dim=dim if diff.self_condition > 0 else None))
        self.process = GaussianProcess(diff.schedule, diff.num_train_timesteps, diff.tan_d)

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, self_cond: torch.Tensor | None) -> torch.Tensor:
        out = self.denoiser(x_t, t, self_cond)
        return self.process.x0_from(out, x_t, t, self.config.diffusion.parametrisation)

    def vector_loss(self, x0: torch.Tensor) -> torch.Tensor:
        """MSE to the parametrisation's target (x0, ε or v) over every coordinate of the canvas."""
        diff = self.config.diffusion
        t = sample_times(self.process, diff, x0)
        return denoising_pass(self.denoiser, self.process, diff, x0, t).squared_error.mean()
