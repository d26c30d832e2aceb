"""Latent diffusion (``latent_planner``, ``latent_ld4lg``): PLANNER and LD4LG.

Composition:
- space: a sentence autoencoder over the frozen MiniLM encoder
  (textdiff.spaces.autoencoders), trained by its own stage (autoencoder@ROW). The
  row's space stage encodes the training split to latents once and stores them
  with per-dimension mean and std; diffusion runs on the standardised latents, a
  canvas of ``num_latents`` vectors of ``latent_dim``;
- process: the shared Gaussian process, cosine schedule, v-prediction and
  self-conditioning 0.5 by default (LD4LG's recipe; all in params);
- denoiser: the shared bidirectional backbone over the latent vectors,
  time-conditioned, with the shared self-conditioning input;
- sampler: the shared Gaussian reverse loop; the sampled latents are
  un-standardised and read by the autoencoder's decoder (greedy, beam or top-p,
  with the KV cache).

Generated text is the project tokenizer's, like the token rows'.
"""

from __future__ import annotations

import torch

from textdiff.params.latent import LatentModelParams, LatentParams, LatentSampleParams
from textdiff.data.vocab import Vocab
from textdiff.nn.vector_diffusion import VectorDiffusion
from textdiff.sampling.batched import seeded_texts
from textdiff.sampling.gaussian_sampler import sample, sampler_config
from textdiff.spaces.autoencoders.latents import LatentCache
from textdiff.spaces.autoencoders.model import TextAutoencoder
from textdiff.training.flops import canvas_step_flops, denoising_flops, generation_cost
from textdiff.training.loop import train

PARAMS = LatentParams


class LatentDiffusion(VectorDiffusion):
    """The shared vector diffusion (textdiff/nn/vector_diffusion.py) on the autoencoder's latent vectors."""

    def __init__(self, config: LatentModelParams, latent_dim: int):
        super().__init__(config, latent_dim)

    def loss(self, x0: torch.Tensor) -> torch.Tensor:
        return self.vector_loss(x0)


def build(params: LatentParams, vocab: Vocab | None = None) -> LatentDiffusion:
    return LatentDiffusion(params.model, params.space.latent_dim)  # a canvas of num_latents (= seq_len) vectors


@torch.no_grad()
def generate(model: LatentDiffusion, autoencoder: TextAutoencoder, latents: LatentCache, num: int,
             params: LatentSampleParams, generator: torch.Generator, device,
             stats: dict | None = None) -> list[list[int]]:
    """Sample standardised latents, bring them to the autoencoder's scale and decode them to project ids
    (``stats['batches']`` collects the decoder's (latents, calls) per batch)."""
    cfg = sampler_config(params, model.denoiser)
    x0 = sample(model.predict_x0, model.process, (num, model.config.seq_len, model.dim), cfg,
                generator=generator, device=device)
    return autoencoder.decode(latents.to_latents(x0), params.decoding, beam_size=params.beam_size,
                              top_p=params.top_p, generator=generator, stats=stats)


# --------------------------------------------------------------------------- what the stages call


CANNOT_INFILL = ("its state is one latent of the whole sentence and its decoder is autoregressive: "
                 "no position holds a known token")
CANNOT_GUIDE = "its state is a sentence latent, which the project-token attribute classifier cannot read; not built"


def fit(params: LatentParams, tokenizer, train_texts: list[str], run):
    """Train on the space stage's latents (``run.space``, a LatentSpace); the encoder never runs here.
    ``run.budget_flops`` sets the steps (textdiff.training.flops)."""
    run.space.check(params.space)
    latents, seed = run.space.latents, run.seed
    n, batch_size = len(latents), params.train.batch_size

    def batch_fn(step: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)  # a resumed run sees the same batches
        return latents.standardised(torch.randint(n, (batch_size,), generator=g).tolist())

    torch.manual_seed(seed)
    model = build(params)
    result = train(model, lambda m, b: m.loss(b), batch_fn, params.train, **run.loop_options(),
                   flops_fn=lambda b: canvas_step_flops(model, b))
    return model, result


def sample_texts(model: LatentDiffusion, tokenizer, params: LatentSampleParams, run) -> tuple[list[str], dict]:
    """Sample latents and decode them with the space's autoencoder (``run.space``, a LatentSpace)."""
    device, autoencoder, latents = run.device, run.space.autoencoder(run.device), run.space.latents
    stats: dict = {}
    texts, speed = seeded_texts(
        model, lambda n, gen: generate(model, autoencoder, latents, n, params, gen, device, stats),
        tokenizer, params.num_samples, params.batch_size, seed=run.seed, device=device)
    M = model.config.seq_len  # the number of latents
    decoder_nfe, decoder_flops = generation_cost(
        autoencoder.decoder, stats["batches"], memory_len=M,
        rows_per_sample=params.beam_size if params.decoding == "beam" else 1)
    flops = denoising_flops(model, M, params.steps) + decoder_flops
    return texts, {**speed, "nfe": params.steps, "decoder_nfe": decoder_nfe, "sample_flops_per_sample": flops,
                   "decoding": params.decoding}


def likelihood(model: LatentDiffusion, tokenizer, texts: list[str], *, device: torch.device, **_) -> dict:
    """Not computed: a bound over latents is not a bound over the text's tokens."""
    return {"heldout_ppl": None, "heldout_ppl_bound": "not computed for latent diffusion"}


LIKELIHOOD_FOOTING = None  # no token likelihood: the learned check (textdiff.report.learned) reads its autoencoder's held-out accuracy and its samples against the noise floor
context_probe = None
cache_wall_clock = None  # no network cache that skips denoiser calls (MDLM's claim; textdiff.families.mdlm)
