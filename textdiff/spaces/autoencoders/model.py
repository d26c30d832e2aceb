"""The sentence autoencoder: frozen MiniLM encodings → compressor → latent (num_latents × latent_dim) →
causal decoder (the project backbone with cross-attention to the latent) → project tokens.

MiniLM itself never runs here: the batches carry its standardised encodings
(``FeatureCache``), computed once per stage. The decoder writes the project
tokenizer's ids (``<bos> text <eos>``), so decoded text is cased like every other
row's and is judged by the same AR model.

Training loss per batch: mean next-token cross-entropy, plus β·KL(q(z|x) ‖ N(0, I))
(per sentence, summed over the latent's coordinates) for the variational
``planner``. ``encode`` is deterministic: the posterior mean for ``planner``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from textdiff.params.latent import LatentSpaceParams
from textdiff.data.batching import batch_indices, encode_sequences, pad_batch
from textdiff.data.vocab import Vocab
from textdiff.io import atomic_path, read_json, write_json
from textdiff.nn import BackboneConfig, Transformer
from textdiff.spaces.autoencoders.compressors import build_compressor, gaussian_kl, reparameterise
from textdiff.spaces.autoencoders.decoding import decode_latents
from textdiff.spaces.minilm import FEATURE_DIM, FeatureCache, minilm_tokenizer
from textdiff.training.checkpoint import state_dict_for_saving
from textdiff.training.flops import autoencoder_step_flops
from textdiff.training.loop import TrainResult, train


@dataclass
class SentenceBatch:
    """Standardised MiniLM encodings (B, L, D), their padding mask (B, L) and the project tokens (B, T)."""

    features: torch.Tensor
    padding: torch.Tensor
    tokens: torch.Tensor

    @property
    def shape(self) -> torch.Size:  # what the training loop counts: decoder tokens
        return self.tokens.shape

    def to(self, device) -> "SentenceBatch":
        return SentenceBatch(self.features.to(device), self.padding.to(device), self.tokens.to(device))


class SentenceData:
    """The encodings cache of some sentences paired with their project-token sequences."""

    def __init__(self, cache: FeatureCache, tokens: list[list[int]], pad_id: int):
        if len(cache) != len(tokens):
            raise ValueError(f"{len(cache)} cached encodings but {len(tokens)} token sequences")
        self.cache, self.tokens, self.pad_id = cache, tokens, pad_id

    @classmethod
    def build(cls, texts: list[str], tokenizer, params: LatentSpaceParams, device) -> "SentenceData":
        cache = FeatureCache.build(texts, "encodings", params.max_length, params.encoder_batch_size, device)
        return cls.of(cache, texts, tokenizer, params)

    @classmethod
    def of(cls, cache: FeatureCache, texts: list[str], tokenizer, params: LatentSpaceParams) -> "SentenceData":
        """``texts`` with their encodings already computed (the features stage's cache)."""
        return cls(cache, encode_sequences(tokenizer, texts, params.decoder.seq_len), tokenizer.pad_token_id)

    def __len__(self) -> int:
        return len(self.tokens)

    def batch(self, indices: list[int]) -> SentenceBatch:
        lengths = [self.cache.offsets[i + 1].item() - self.cache.offsets[i].item() for i in indices]
        canvas = self.cache.canvas(indices, max(lengths))
        return SentenceBatch(canvas.x0, canvas.ids == minilm_tokenizer().pad_token_id,
                             pad_batch([self.tokens[i] for i in indices], self.pad_id))


class TextAutoencoder(nn.Module):
    def __init__(self, params: LatentSpaceParams, vocab: Vocab):
        super().__init__()
        self.params, self.vocab = params, vocab
        self.compressor = build_compressor(params.autoencoder, params.compressor, FEATURE_DIM, params.num_latents,
                                           params.latent_dim)
        self.decoder = Transformer(BackboneConfig.from_params(params.decoder, causal=True, vocab_size=vocab.size,
                                                              cross_dim=params.latent_dim))

    @property
    def variational(self) -> bool:
        return self.compressor.variational

    def posterior(self, batch: SentenceBatch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(latent or posterior mean, log-variance or None)."""
        out = self.compressor(batch.features, batch.padding)
        return out if self.variational else (out, None)

    def encode(self, batch: SentenceBatch) -> torch.Tensor:
        return self.posterior(batch)[0]

    def loss_terms(self, batch: SentenceBatch, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        mean, logvar = self.posterior(batch)
        z = reparameterise(mean, logvar, generator) if self.variational else mean
        targets = batch.tokens[:, 1:]
        keep = targets != self.vocab.pad_id
        hidden = self.decoder.hidden(batch.tokens[:, :-1], memory=z)
        ce = F.cross_entropy(self.decoder.head(hidden[keep]).float(), targets[keep])
        kl = gaussian_kl(mean, logvar).mean() if self.variational else torch.zeros((), device=ce.device)
        return {"ce": ce, "kl": kl, "loss": ce + self.params.kl_beta * kl}

    def loss(self, batch: SentenceBatch) -> torch.Tensor:
        return self.loss_terms(batch)["loss"]

    def decode(self, latents: torch.Tensor, method: str = "greedy", **kwargs) -> list[list[int]]:
        """Latents (B, num_latents, latent_dim) → project token ids, after projecting them onto the set of
        latents the compressor produces (LD4LG's √dim sphere), so a diffusion sample is read like an encoded one."""
        return decode_latents(self.decoder, self.compressor.on_manifold(latents), self.vocab, method, **kwargs)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def fit_autoencoder(params: LatentSpaceParams, data: SentenceData, vocab: Vocab, *, seed: int, device,
                    checkpoint_dir=None, fingerprint: str = "", log=None, progress: bool = True,
                    stop_after: int | None = None, budget_flops: float | None = None
                    ) -> tuple[TextAutoencoder, TrainResult]:
    """Train the compressor and decoder (``budget_flops``: the row's FLOP budget, which with
    ``params.train.budget_share`` sets the steps; textdiff.training.flops)."""
    lengths = [len(t) for t in data.tokens]
    torch.manual_seed(seed)
    model = TextAutoencoder(params, vocab)
    result = train(model, lambda m, b: m.loss(b),
                   lambda step: data.batch(batch_indices(lengths, params.train.batch_size, step, seed)),
                   params.train, checkpoint_dir=checkpoint_dir, fingerprint=fingerprint, device=device, log=log,
                   progress=progress, stop_after=stop_after, budget_flops=budget_flops,
                   flops_fn=lambda b: autoencoder_step_flops(model, b))
    return model, result


def save_autoencoder(folder: str | Path, model: TextAutoencoder) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "autoencoder.safetensors") as tmp:
        save_file(state_dict_for_saving(model), str(tmp))
    write_json(folder / "autoencoder.json", {"params": model.params.model_dump(mode="json"),
                                              "vocab": model.vocab.to_dict()})


def load_autoencoder(folder: str | Path, device="cpu") -> TextAutoencoder:
    folder = Path(folder)
    weights = folder / "autoencoder.safetensors"
    if not weights.exists():
        raise FileNotFoundError(f"no trained autoencoder at {weights} (run the row's autoencoder stage first)")
    meta = read_json(folder / "autoencoder.json")
    model = TextAutoencoder(LatentSpaceParams.model_validate(meta["params"]), Vocab(**meta["vocab"]))
    model.load_state_dict(load_file(str(weights), device=str(device)))
    return model.to(device).eval()
