"""Simplex diffusion (``simplex``): SSD-LM / TESS on the ±k logit simplex.

Composition:
- space: tokens ↔ the ±k simplex (textdiff.spaces.simplex);
- process: the shared Gaussian process with noise scaled by k (cosine schedule by default);
- denoiser: the shared bidirectional backbone, time-conditioned; its input is
  softmax(s_t)·E, the expected token embedding under the noisy simplex (E is the
  backbone's token embedding, tied to its output head, so it starts from the same
  initialisation as every other row's token embeddings); it returns logits;
- loss: cross-entropy of those logits against the clean tokens at every position;
- sampler: SSD-LM's loop: predict logits, project them back onto ±k (one sampled
  token or the top-p multi-hot), re-noise the projection to the next time.

Self-conditioning (TESS) feeds softmax(previous logits)·E through the backbone's
self-conditioning projection: with probability p in training (a no-grad first
pass), and every step after the first at sampling.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from textdiff.params.simplex import SimplexModelParams, SimplexParams, SimplexSampleParams
from textdiff.data.vocab import Vocab
from textdiff.nn import BackboneConfig, DenoiserModel, Transformer
from textdiff.processes.gaussian import GaussianProcess
from textdiff.sampling.batched import seeded_texts
from textdiff.sampling.gaussian_sampler import time_grid
from textdiff.sampling.guidance import Guidance, active, gradient
from textdiff.spaces.simplex import noised, project, token_simplex
from textdiff.training.fit import canvas_fit
from textdiff.training.flops import denoising_flops
from textdiff.training.self_conditioning import self_condition_input

PARAMS = SimplexParams


class SimplexDiffusion(DenoiserModel):
    def __init__(self, config: SimplexModelParams, vocab: Vocab):
        super().__init__()
        self.config, self.vocab = config, vocab  # the row's model params: all a module is built from
        diff = config.diffusion
        self.k = diff.simplex_k
        self.denoiser = Transformer(BackboneConfig.from_params(
            config, causal=False, vocab_size=vocab.size, time_conditioning=True,
            self_cond_dim=config.d_model if diff.self_condition > 0 else None))
        self.process = GaussianProcess(diff.schedule, diff.num_train_timesteps, diff.tan_d)

    def soft_embedding(self, probs: torch.Tensor) -> torch.Tensor:
        return probs @ self.denoiser.tok_emb.weight

    def logits(self, s_t: torch.Tensor, t: torch.Tensor, prev_probs: torch.Tensor | None) -> torch.Tensor:
        """Logits of x0 from the noisy simplex; ``prev_probs`` is the self-conditioning estimate (or None)."""
        self_cond = None if prev_probs is None or self.denoiser.self_cond_proj is None else self.soft_embedding(prev_probs)
        return self.denoiser(torch.softmax(s_t, dim=-1), t, self_cond)

    def loss(self, tokens: torch.Tensor) -> torch.Tensor:
        diff = self.config.diffusion
        t = self.process.sample_times(tokens.shape[0], device=tokens.device,
                                      low_discrepancy=diff.time_sampling == "low_discrepancy")
        s0 = token_simplex(tokens, self.vocab.size, self.k)
        s_t = noised(self.process, s0, t, self.k, torch.randn_like(s0))
        prev = None
        if self.denoiser.self_cond_proj is not None:
            prev = self_condition_input(lambda zeros: torch.softmax(self.logits(s_t, t, zeros), dim=-1), s0,
                                        diff.self_condition)
        logits = self.logits(s_t, t, prev)
        return F.cross_entropy(logits.reshape(-1, self.vocab.size), tokens.reshape(-1))

    def flops_per_token(self, seq_len: int, training: bool = True) -> float:
        """The denoiser plus its input layers: softmax(s_t)·E and, with the self-conditioning input,
        softmax(previous logits)·E (computed on zeros too: the plain pass feeds zeros through it)."""
        products = 2 if self.denoiser.self_cond_proj is not None else 1
        soft_inputs = products * 2 * self.denoiser.tok_emb.weight.numel() * (3 if training else 1)
        return self.denoiser.flops_per_token(seq_len, training) + soft_inputs

    def self_condition_flops_per_token(self, seq_len: int) -> float:
        """The estimate pass runs the same input layers as the trained pass, forward only."""
        return self.flops_per_token(seq_len, training=False)


def build(params: SimplexParams, vocab: Vocab) -> SimplexDiffusion:
    return SimplexDiffusion(params.model, vocab)


# --------------------------------------------------------------------------- sampling


@torch.no_grad()
def generate(model: SimplexDiffusion, num: int, params: SimplexSampleParams, generator: torch.Generator,
             device: torch.device, infill: tuple[torch.Tensor, torch.Tensor] | None = None) -> list[list[int]]:
    """SSD-LM's reverse loop over ``params.steps`` times; ``infill=(mask, tokens)`` holds known tokens.

    The returned tokens are the last step's projection (the sampled token, or the argmax for top-p).
    """
    return [model.vocab.strip(row) for row in sample_tokens(model, num, params, generator, device, infill).tolist()]


@torch.no_grad()
def sample_tokens(model: SimplexDiffusion, num: int, params: SimplexSampleParams, generator: torch.Generator,
                  device: torch.device, infill: tuple[torch.Tensor, torch.Tensor] | None = None,
                  guide: Guidance | None = None) -> torch.Tensor:
    """The (num, L) token canvases of ``generate``. Known positions are reset to their ±k simplex every step;
    ``guide`` adds γ·∇ log p(label | softmax(logits)) to the predicted logits, as SSD-LM's control does."""
    k, vocab = model.k, model.vocab
    shape = (num, model.config.seq_len, vocab.size)
    trained_with_sc = model.denoiser.self_cond_proj is not None
    known = token_simplex(infill[1].to(device), vocab.size, k) if infill is not None else None
    s = k * torch.randn(shape, generator=generator, device=device)
    prev = torch.zeros(shape, device=device) if trained_with_sc else None  # zeros, as in training's plain pass
    times = time_grid(model.process, params.steps, device)
    for i in range(params.steps):
        t = times[i].expand(num)
        if known is not None:
            s = torch.where(infill[0][..., None].to(device), known, s)
        logits = model.logits(s, t, prev)
        if active(guide):
            logits = logits + guide.strength * logit_gradient(guide, logits)
        if trained_with_sc and params.self_condition:
            prev = torch.softmax(logits, dim=-1)
        tokens, s0_hat = project(logits, params.projection, params.top_p, k, generator)
        if i + 1 < params.steps:
            noise = torch.randn(shape, generator=generator, device=device)
            s = noised(model.process, s0_hat, times[i + 1].expand(num), k, noise)
    if infill is not None:
        tokens = torch.where(infill[0].to(device), infill[1].to(device), tokens)
    return tokens


def logit_gradient(guide: Guidance, logits: torch.Tensor) -> torch.Tensor:
    """∂ Σ log p(label | softmax(logits)) / ∂ logits."""
    return gradient(lambda z: guide.score(torch.softmax(z, dim=-1)), logits)


# --------------------------------------------------------------------------- what the stages call


fit = canvas_fit(build)
CANNOT_INFILL = CANNOT_GUIDE = None  # known positions reset to their ±k simplex each step; logits are guided


def draw_canvas(model: SimplexDiffusion, num: int, params: SimplexSampleParams, *, generator: torch.Generator,
                device: torch.device, infill=None, guide: Guidance | None = None) -> torch.Tensor:
    """(num, L) token canvases with known tokens and/or guidance (textdiff.tasks)."""
    return sample_tokens(model, num, params, generator, device, infill, guide)


def sample_texts(model: SimplexDiffusion, tokenizer, params: SimplexSampleParams, run) -> tuple[list[str], dict]:
    texts, speed = seeded_texts(model, lambda n, gen: generate(model, n, params, gen, run.device), tokenizer,
                                params.num_samples, params.batch_size, seed=run.seed, device=run.device)
    return texts, {**speed, "nfe": params.steps, "decoder_nfe": 0,
                   "sample_flops_per_sample": denoising_flops(model, model.config.seq_len, params.steps)}


def likelihood(model: SimplexDiffusion, tokenizer, texts: list[str], *, device: torch.device, **_) -> dict:
    """Not computed: simplex diffusion trains a cross-entropy surrogate, not a variational bound."""
    return {"heldout_ppl": None, "heldout_ppl_bound": "not computed for simplex diffusion"}


LIKELIHOOD_FOOTING = None  # no token likelihood: the learned check (textdiff.report.learned) reads its samples against the noise floor
context_probe = None
cache_wall_clock = None  # no network cache that skips denoiser calls (MDLM's claim; textdiff.families.mdlm)
