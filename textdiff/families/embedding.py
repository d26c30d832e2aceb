"""Diffusion-LM (``embedding``): Gaussian diffusion on learned token embeddings.

Composition:
- space: a learned embedding table E (random init), tokens → EMB(w), and the
  tied rounding head logits = x·Eᵀ;
- process: the shared Gaussian process (sqrt schedule by default);
- denoiser: the shared bidirectional backbone, time-conditioned, with the
  self-conditioning input;
- sampler: the shared reverse loop, with clamping to the nearest embedding as
  its ``denoised_fn`` and exact nearest-embedding rounding at the end.

The loss is Diffusion-LM's end-to-end objective, as its reference trains it:
x0-MSE on noised embeddings (the t = 0 term regresses on EMB(w) itself), the
rounding cross-entropy of the tied head on x0, and the prior term ‖√ᾱ_T·x0‖².
Sequences are fixed length: ``<bos> tokens <eos> <pad>…``; padding is modelled.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from textdiff.params.embedding import EmbeddingModelParams, EmbeddingParams, GaussianSampleParams
from textdiff.data.vocab import Vocab
from textdiff.nn import BackboneConfig, DenoiserModel, Transformer
from textdiff.losses.gaussian import denoising_pass, sample_times
from textdiff.processes.gaussian import GaussianProcess
from textdiff.sampling.gaussian_sampler import sample, sampler_config
from textdiff.sampling.batched import seeded_texts
from textdiff.sampling.guidance import Guidance, active
from textdiff.sampling.rounding import NearestEmbedding, clamp_to_embeddings
from textdiff.training.fit import canvas_fit

PARAMS = EmbeddingParams


class EmbeddingDiffusion(DenoiserModel):
    def __init__(self, config: EmbeddingModelParams, vocab: Vocab):
        super().__init__()
        self.config, self.vocab = config, vocab  # the row's model params: all a module is built from
        dim, diff = config.embedding_dim, config.diffusion
        self.embedding = nn.Embedding(vocab.size, dim)  # N(0, 1) init, as Diffusion-LM
        self.denoiser = Transformer(BackboneConfig.from_params(
            config, causal=False, input_dim=dim, output_dim=dim, time_conditioning=True,
            self_cond_dim=dim if diff.self_condition > 0 else None))
        self.process = GaussianProcess(diff.schedule, diff.num_train_timesteps, diff.tan_d)

    # ---------------------------------------------------------------- space

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The tied rounding head: logits = x·Eᵀ."""
        return x @ self.embedding.weight.T

    # ---------------------------------------------------------------- denoiser

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, self_cond: torch.Tensor | None) -> torch.Tensor:
        out = self.denoiser(x_t, t, self_cond)
        return self.process.x0_from(out, x_t, t, self.config.diffusion.parametrisation)

    # ---------------------------------------------------------------- loss

    def loss(self, tokens: torch.Tensor) -> torch.Tensor:
        diff, process = self.config.diffusion, self.process
        emb = self.embedding(tokens)  # EMB(w)
        t = sample_times(process, diff, emb)
        std0 = (1 - process.alpha_bar(torch.zeros(1, device=tokens.device))).sqrt().float()
        x0 = emb + std0 * torch.randn_like(emb)  # q(x0 | w)
        step = denoising_pass(self.denoiser, process, diff, x0, t)
        mse = step.squared_error.mean(dim=(1, 2))
        x0_hat = process.x0_from(step.out, step.x_t, t, diff.parametrisation)
        mse_t0 = ((x0_hat - emb) ** 2).mean(dim=(1, 2))  # at t = 0 the target is EMB(w)
        mse = torch.where(t == 0, mse_t0, mse)
        t_last = torch.full_like(t, (process.num_train_timesteps - 1) / process.num_train_timesteps)
        alpha_T, _ = process.coefficients(t_last, x0)
        prior = ((alpha_T * x0) ** 2).mean(dim=(1, 2))
        rounding = F.cross_entropy(self.logits(x0).reshape(-1, self.vocab.size), tokens.reshape(-1))
        return (mse + prior).mean() + rounding

    # ---------------------------------------------------------------- accounting (for MFU)

    def flops_per_token(self, seq_len: int, training: bool = True) -> float:
        head = 2 * self.embedding.weight.numel() * (3 if training else 1)  # rounding logits
        return self.denoiser.flops_per_token(seq_len, training) + head


def build(params: EmbeddingParams, vocab: Vocab) -> EmbeddingDiffusion:
    return EmbeddingDiffusion(params.model, vocab)


# --------------------------------------------------------------------------- sampling


def clamping(model: EmbeddingDiffusion, params: GaussianSampleParams, nearest: NearestEmbedding):
    """The ``denoised_fn`` that clamps x̂0 to the nearest embeddings from step ``clamp_from`` on."""
    if not params.clamp:
        return None
    table = model.embedding.weight

    def denoised_fn(x0: torch.Tensor, step: int) -> torch.Tensor:
        return clamp_to_embeddings(x0, table, nearest) if step >= params.clamp_from else x0

    return denoised_fn


@torch.no_grad()
def generate(model: EmbeddingDiffusion, num: int, params: GaussianSampleParams, generator: torch.Generator,
             device: torch.device, infill: tuple[torch.Tensor, torch.Tensor] | None = None,
             nearest: NearestEmbedding | None = None, stats: dict | None = None) -> list[list[int]]:
    """Sample ``num`` sequences; round the final x̂0 to tokens; strip specials.

    ``infill=(mask, x0)`` holds masked positions at the clean values ``x0`` (embedding space).
    Pass one ``nearest`` across batches to reuse its index (rebuilt only if the table changes).
    ``stats['rounding_error']`` collects, per sample, the rounding error (``rounding_error``).
    """
    ids = sample_ids(model, num, params, generator, device, infill, nearest, stats)
    return [model.vocab.strip(row) for row in ids.tolist()]


@torch.no_grad()
def sample_ids(model: EmbeddingDiffusion, num: int, params: GaussianSampleParams, generator: torch.Generator,
               device: torch.device, infill: tuple[torch.Tensor, torch.Tensor] | None = None,
               nearest: NearestEmbedding | None = None, stats: dict | None = None,
               guide: Guidance | None = None) -> torch.Tensor:
    """The (num, L) rounded canvases of ``generate``; ``guide`` adds γ·∇ log p(label | softmax(x̂0·Eᵀ/√dim)) to
    x̂0 at every reverse step (textdiff.sampling.guidance; at temperature 1 the rounding softmax of a trained
    table is nearly one-hot and its gradient vanishes)."""
    nearest = nearest or NearestEmbedding(params.rounding)
    shape = (num, model.config.seq_len, model.config.embedding_dim)
    last = {}

    def denoise(x_t, t, self_cond):
        last["x0"] = model.predict_x0(x_t, t, self_cond)  # the model's own x̂0, before clamping
        return last["x0"]

    cfg = sampler_config(params, model.denoiser)
    score = None
    if active(guide):
        cfg.guidance_scale, cfg.guidance_on = guide.strength, "x0"
        temperature = model.config.embedding_dim ** 0.5  # keeps the rounding distribution soft: a gradient

        def score(x0, t):
            return guide.score(torch.softmax(model.logits(x0) / temperature, dim=-1))
    x0 = sample(denoise, model.process, shape, cfg, generator=generator, device=device,
                denoised_fn=clamping(model, params, nearest), guidance=score, infill=infill)
    ids = nearest(x0, model.embedding.weight)
    if stats is not None:
        stats.setdefault("rounding_error", []).extend(rounding_error(last["x0"].detach(), model, nearest).tolist())
    return ids


def rounding_error(x0_raw: torch.Tensor, model: EmbeddingDiffusion, nearest: NearestEmbedding) -> torch.Tensor:
    """Per sample: the mean L2 distance from the last step's predicted x̂0 (before any clamping) to its nearest
    embedding, over the canvas. Diffusion-LM's clamping claim is that this error shrinks when x̂0 is clamped
    during the earlier steps (with clamping on, the final x̂0 itself is an embedding, so the raw prediction is
    the figure that can differ)."""
    table = model.embedding.weight
    snapped = table[nearest(x0_raw, table)]
    return (x0_raw - snapped).norm(dim=-1).mean(-1)


# --------------------------------------------------------------------------- what the stages call


fit = canvas_fit(build)
CANNOT_INFILL = CANNOT_GUIDE = None  # known positions are reset to their embeddings every step; x̂0 is guided


def draw_canvas(model: EmbeddingDiffusion, num: int, params: GaussianSampleParams, *, generator: torch.Generator,
                device: torch.device, infill=None, guide: Guidance | None = None) -> torch.Tensor:
    """(num, L) token canvases; ``infill=(known, tokens)`` in token ids: known positions are held at their
    embeddings EMB(w) every step, as Diffusion-LM infills, so the final x̂0 there is EMB(w) and rounds to w."""
    held = None if infill is None else (infill[0].to(device), model.embedding(infill[1].to(device)))
    return sample_ids(model, num, params, generator, device, held, guide=guide)


def sample_texts(model: EmbeddingDiffusion, tokenizer, params: GaussianSampleParams, run) -> tuple[list[str], dict]:
    from textdiff.eval.intervals import mean_interval

    seed, device = run.seed, run.device
    nearest = NearestEmbedding(params.rounding)
    stats: dict = {}
    texts, speed = seeded_texts(model, lambda n, gen: generate(model, n, params, gen, device, nearest=nearest,
                                                               stats=stats),
                                tokenizer, params.num_samples, params.batch_size, seed=seed, device=device)
    errors = stats["rounding_error"]
    return texts, {**speed, "nfe": params.steps, "decoder_nfe": 0,
                   "sample_flops_per_sample": sample_flops(model, params),
                   "rounding_error": sum(errors) / len(errors), "rounding_error_ci": mean_interval(errors, seed=seed)}


def sample_flops(model: EmbeddingDiffusion, params: GaussianSampleParams) -> float:
    """FLOPs per sample: ``steps`` denoiser passes, and a nearest-embedding search (≈ 2·V·dim per position,
    as the rounding head) at every clamped step and once at the end."""
    L = model.config.seq_len
    searches = (max(0, params.steps - params.clamp_from) if params.clamp else 0) + 1
    return params.steps * L * model.denoiser.flops_per_token(L, training=False) \
        + searches * L * 2 * model.embedding.weight.numel()


def likelihood(model: EmbeddingDiffusion, tokenizer, texts: list[str], *, device: torch.device,
               batch_size: int = 64, **_) -> dict:
    """Not implemented yet: Diffusion-LM's variational bound (its rounding and prior terms over
    the learned embedding) is left out; the row reports sample metrics only and says so."""
    return {"heldout_ppl": None, "heldout_ppl_bound": "not computed for embedding diffusion"}


LIKELIHOOD_FOOTING = None  # no token likelihood: the learned check (textdiff.report.learned) reads its samples against the noise floor
context_probe = None
cache_wall_clock = None  # no network cache that skips denoiser calls (MDLM's claim; textdiff.families.mdlm)
