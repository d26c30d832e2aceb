"""The encoder side of the two autoencoders: MiniLM encodings (B, L, 384) → a fixed set of latent vectors.

- ``planner`` (PLANNER): learned queries pool the encodings by attention, then a
  mean and a log-variance head give a diagonal Gaussian posterior per latent
  vector; training samples it with the reparameterisation trick and pays β·KL to
  N(0, I).
- ``ld4lg`` (LD4LG): a Perceiver resampler, learned queries that cross-attend to
  the encodings and then to each other over a few layers; the latents are
  L2-normalised and scaled by √dim, so every latent vector has norm √dim and its
  coordinates have unit scale on average.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from textdiff.params.latent import CompressorParams


class PerceiverLayer(nn.Module):
    """Pre-norm: latents ← latents + cross-attention to the inputs (+ self-attention) + MLP."""

    def __init__(self, d_model: int, n_heads: int, dropout: float, self_attention: bool):
        super().__init__()
        self.norm_cross = nn.LayerNorm(d_model)
        self.cross = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.norm_self = nn.LayerNorm(d_model) if self_attention else None
        self.self_attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True) \
            if self_attention else None
        self.norm_mlp = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(approximate="tanh"),
                                 nn.Linear(4 * d_model, d_model))

    def forward(self, latents: torch.Tensor, inputs: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        """``padding``: (B, L) True where the input position is padding."""
        q = self.norm_cross(latents)
        latents = latents + self.cross(q, inputs, inputs, key_padding_mask=padding, need_weights=False)[0]
        if self.self_attn is not None:
            q = self.norm_self(latents)
            latents = latents + self.self_attn(q, q, q, need_weights=False)[0]
        return latents + self.mlp(self.norm_mlp(latents))


class _Queries(nn.Module):
    """Learned queries reading the (projected) encodings through ``n_layers`` Perceiver layers."""

    def __init__(self, params: CompressorParams, input_dim: int, num_latents: int, self_attention: bool):
        super().__init__()
        d = params.d_model
        self.in_proj = nn.Linear(input_dim, d)
        self.in_norm = nn.LayerNorm(d)
        self.queries = nn.Parameter(torch.randn(num_latents, d) * 0.02)
        self.layers = nn.ModuleList(PerceiverLayer(d, params.n_heads, params.dropout, self_attention)
                                    for _ in range(params.n_layers))
        self.out_norm = nn.LayerNorm(d)

    def forward(self, features: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        inputs = self.in_norm(self.in_proj(features))
        latents = self.queries.expand(features.shape[0], -1, -1)
        for layer in self.layers:
            latents = layer(latents, inputs, padding)
        return self.out_norm(latents)


class PlannerPooling(nn.Module):
    """PLANNER's posterior: attention pooling into ``num_latents`` vectors, then mean and log-variance heads."""

    variational = True

    def __init__(self, params: CompressorParams, input_dim: int, num_latents: int, latent_dim: int):
        super().__init__()
        self.pool = _Queries(params, input_dim, num_latents, self_attention=False)
        self.mean = nn.Linear(params.d_model, latent_dim)
        self.logvar = nn.Linear(params.d_model, latent_dim)

    def forward(self, features: torch.Tensor, padding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.pool(features, padding)
        return self.mean(pooled), self.logvar(pooled)

    @staticmethod
    def on_manifold(latents: torch.Tensor) -> torch.Tensor:
        """Any vector is a valid latent of the VAE."""
        return latents


class PerceiverCompressor(nn.Module):
    """LD4LG's compression network: a Perceiver resampler, then L2 normalisation × √latent_dim."""

    variational = False

    def __init__(self, params: CompressorParams, input_dim: int, num_latents: int, latent_dim: int):
        super().__init__()
        self.resampler = _Queries(params, input_dim, num_latents, self_attention=True)
        self.out = nn.Linear(params.d_model, latent_dim)

    def forward(self, features: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        return l2_scaled(self.out(self.resampler(features, padding)))

    @staticmethod
    def on_manifold(latents: torch.Tensor) -> torch.Tensor:
        """Back onto the sphere of radius √dim every encoded latent lies on."""
        return l2_scaled(latents)


def l2_scaled(z: torch.Tensor) -> torch.Tensor:
    """Each vector (last dim) rescaled to norm √dim."""
    return nn.functional.normalize(z, dim=-1) * math.sqrt(z.shape[-1])


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, e^logvar) ‖ N(0, I)) per sentence (summed over every latent coordinate but the batch's)."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).flatten(1).sum(1)


def reparameterise(mean: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + (0.5 * logvar).exp() * noise


def build_compressor(variant: str, params: CompressorParams, input_dim: int, num_latents: int,
                     latent_dim: int) -> nn.Module:
    kinds = {"planner": PlannerPooling, "ld4lg": PerceiverCompressor}
    if variant not in kinds:
        raise ValueError(f"unknown autoencoder {variant!r} ({' | '.join(kinds)})")
    return kinds[variant](params, input_dim, num_latents, latent_dim)
