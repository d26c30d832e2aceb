"""The latent dataset: every training sentence's latent, computed once by the space stage, with the
per-dimension mean and std that standardise it for diffusion (statistics over all sentences and
latent vectors, in float64)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from textdiff.io import atomic_path
from textdiff.spaces.autoencoders.model import SentenceData, TextAutoencoder
from textdiff.spaces.minilm import per_dimension_stats, standardise, unstandardise

LATENTS_FILE = "latents.safetensors"


@dataclass
class LatentCache:
    latents: torch.Tensor  # (N, num_latents, latent_dim) float32, as the autoencoder encodes them
    mean: torch.Tensor  # (latent_dim,)
    std: torch.Tensor  # (latent_dim,)
    autoencoder: str

    @classmethod
    def of(cls, latents: torch.Tensor, autoencoder: str) -> "LatentCache":
        mean, std = per_dimension_stats(latents.reshape(-1, latents.shape[-1]))
        return cls(latents.float(), mean, std, autoencoder)

    def __len__(self) -> int:
        return self.latents.shape[0]

    def standardised(self, indices: list[int]) -> torch.Tensor:
        return standardise(self.latents[indices], self.mean, self.std)

    def to_latents(self, x: torch.Tensor) -> torch.Tensor:
        """Standardised diffusion samples → the autoencoder's latent scale."""
        return unstandardise(x, self.mean, self.std)

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / LATENTS_FILE) as tmp:
            save_file({"latents": self.latents.contiguous(), "mean": self.mean, "std": self.std}, str(tmp),
                      metadata={"autoencoder": self.autoencoder})

    @classmethod
    def load(cls, folder: str | Path) -> "LatentCache":
        path = Path(folder) / LATENTS_FILE
        if not path.exists():
            raise FileNotFoundError(f"no latent dataset at {path} (run the row's space stage first)")
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            meta = f.metadata()
        t = load_file(str(path))
        return cls(t["latents"], t["mean"], t["std"], meta["autoencoder"])

    def summary(self) -> dict:
        z = self.latents
        return {"autoencoder": self.autoencoder, "sentences": len(self), "num_latents": z.shape[1],
                "latent_dim": z.shape[2], "mean": float(z.mean()), "std": float(z.std()),
                "norm": float(z.norm(dim=-1).mean()), "std_min": float(self.std.min()),
                "std_max": float(self.std.max())}


@torch.no_grad()
def encode_all(model: TextAutoencoder, data: SentenceData, batch_size: int, device) -> torch.Tensor:
    """Deterministic latents (N, num_latents, latent_dim) of every sentence, in order."""
    model.to(device).eval()
    out = [model.encode(data.batch(list(range(s, min(s + batch_size, len(data))))).to(device)).float().cpu()
           for s in range(0, len(data), batch_size)]
    return torch.cat(out)
