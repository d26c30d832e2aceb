"""Masked diffusion (``mdlm``, Sahoo et al. 2024): absorbing-state discrete diffusion.

Composition:
- state: token ids on a fixed canvas ``<bos> tokens <eos> <pad>…``; [MASK] is the
  tokenizer's ``<mask>`` token;
- process: the absorbing graph with a continuous-time schedule (log-linear by
  default: a token is masked with probability (1−ε)t);
- denoiser: the shared bidirectional backbone over token ids, without t by
  default, with the SUBS parametrisation (never predict [MASK]; unmasked
  positions carry over);
- loss: the continuous-time ELBO, −log p_θ(x0)·(−α′/(1−α)) on masked positions
  (1/t for log-linear; textdiff.losses.discrete, checked against SEDD's score
  entropy), antithetic t, reported per canvas token;
- sampler: ancestral steps from t = 1 to 0; a sequence that a step leaves
  unchanged keeps its prediction (the cache), valid when the denoiser does not
  take t. Categorical draws in float64.
"""

from __future__ import annotations

import time

import torch

from textdiff.params.mdlm import MDLMParams, MaskedModelParams, MaskedSampleParams
from textdiff.data.vocab import Vocab
from textdiff.losses.discrete import masked_diffusion_loss
from textdiff.nn import BackboneConfig, DenoiserModel, Transformer
from textdiff.processes.discrete import (Absorbing, antithetic_times, continuous_time, discrete_schedule, masked_weight,
                                         time_for_share)
from textdiff.sampling.categorical import gumbel_noise
from textdiff.eval.context_probe import discrete_probe
from textdiff.eval.elbo import elbo_perplexity, stratified_bound
from textdiff.sampling.batched import seeded_texts
from textdiff.sampling.discrete_sampler import initial_canvas
from textdiff.sampling.grid import continuous_times
from textdiff.sampling.guidance import Guidance, active, tilted_log_probs
from textdiff.training.fit import canvas_fit
from textdiff.training.flops import body_forward, head_forward, masked_head_flops_per_token

PARAMS = MDLMParams


class MaskedDiffusion(DenoiserModel):
    def __init__(self, config: MaskedModelParams, vocab: Vocab):
        super().__init__()
        if vocab.mask_id is None:
            raise ValueError("masked diffusion needs a tokenizer with a <mask> token")
        self.config, self.vocab = config, vocab  # the row's model params: all a module is built from
        self.denoiser = Transformer(BackboneConfig.from_params(config, causal=False, vocab_size=vocab.size,
                                                               time_conditioning=config.time_conditioning))
        self.graph = Absorbing(vocab.size, vocab.mask_id)
        self.schedule = discrete_schedule(config.schedule)

    # ---------------------------------------------------------------- denoiser (SUBS)

    def masked_log_probs(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """log p_θ(x0 | x_t) at the masked positions only, (N_masked, V), never [MASK].

        The output head over the vocabulary is the costliest layer; unmasked
        positions need no prediction (they carry over), so it runs only where masked.
        """
        h = self.denoiser.hidden(x_t, t if self.config.time_conditioning else None)
        logits = self.graph.restrict_x0(self.denoiser.head(h[x_t == self.vocab.mask_id]).float())
        return torch.log_softmax(logits, dim=-1)

    def log_probs(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Full (B, L, V) log p_θ(x0 | x_t): an unmasked position is certain of its own token."""
        out = torch.full((*x_t.shape, self.vocab.size), float("-inf"), device=x_t.device)
        out.scatter_(-1, x_t[..., None], 0.0)
        masked = x_t == self.vocab.mask_id
        out[masked] = self.masked_log_probs(x_t, t)
        return out

    def x0_log_probs_at_share(self, x_t: torch.Tensor, share: float) -> torch.Tensor:
        """(B, L, V) log p_θ(x0 | x_t) asked at the time when a share ``share`` of tokens is masked (the probes
        of textdiff.eval.context_probe ask every discrete family this)."""
        return self.log_probs(x_t, time_for_share(self.schedule, share).expand(x_t.shape[0]).to(x_t.device))

    # ---------------------------------------------------------------- accounting

    def flops_per_token(self, seq_len: int, training: bool = True) -> float:
        """The output head runs only at masked positions: in training (and in the ELBO) a fraction
        E_t[1 − α(t)] of the canvas (1/2 for log-linear). Sampling counts the positions it scores."""
        return masked_head_flops_per_token(self.denoiser, self.schedule, seq_len, training)

    # ---------------------------------------------------------------- loss and ELBO

    def weight(self, t: torch.Tensor) -> torch.Tensor:
        """−α′/(1−α): the ELBO weight of a masked token (1/t for log-linear)."""
        return masked_weight(self.schedule, t)

    def token_losses(self, x0: torch.Tensor, t: torch.Tensor, generator=None) -> torch.Tensor:
        """(B, L) ELBO terms: weight(t)·(−log p_θ(x0)) where masked, 0 where carried over."""
        x_t = self.graph.corrupt(x0, self.schedule.total(t), generator)
        return masked_diffusion_loss(self.masked_log_probs(x_t, t), x0, x_t == self.vocab.mask_id, self.weight(t))

    def loss(self, x0: torch.Tensor) -> torch.Tensor:
        """ELBO per canvas token, with antithetic (stratified) t over the batch."""
        return self.token_losses(x0, antithetic_times(x0.shape[0], x0.device)).mean()

    @torch.no_grad()
    def nll_bound(self, x0: torch.Tensor, draws: int, generator: torch.Generator | None = None,
                  per_draw: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Per-sequence upper bound on −log p(x0) in nats: Monte-Carlo over ``draws`` stratified t.

        ``per_draw=True`` also returns the (B, draws) single-draw estimates whose mean is the
        bound (for its Monte-Carlo standard error); the bound and the random draws are the same.
        """
        return stratified_bound(self.token_losses, x0, draws, continuous_time, generator, per_draw=per_draw)


def build(params: MDLMParams, vocab: Vocab) -> MaskedDiffusion:
    return MaskedDiffusion(params.model, vocab)


# --------------------------------------------------------------------------- sampling


def generate(model: MaskedDiffusion, num: int, steps: int, generator: torch.Generator, device: torch.device,
             use_cache: bool = True, infill: tuple[torch.Tensor, torch.Tensor] | None = None,
             stats: dict | None = None) -> list[list[int]]:
    """Sample canvases (see ``sample_canvas``) and return their text token ids."""
    x = sample_canvas(model, num, steps, generator, device, use_cache, infill, stats)
    return [model.vocab.strip(row) for row in x.tolist()]


@torch.no_grad()
def sample_canvas(model: MaskedDiffusion, num: int, steps: int, generator: torch.Generator, device: torch.device,
                  use_cache: bool = True, infill: tuple[torch.Tensor, torch.Tensor] | None = None,
                  stats: dict | None = None, guide: Guidance | None = None) -> torch.Tensor:
    """Ancestral sampling from all-[MASK] (position 0 held at <bos>); returns the (num, L) canvas.

    Each step reveals every masked token with probability (α_s − α_t)/(1 − α_t)
    and draws the revealed ones from p_θ(x0 | x_t); the last step reveals the
    rest. The cache is per sequence: a sequence none of whose tokens changed
    keeps its prediction, so the denoiser runs only on the rows that did change
    (valid because the denoiser does not take t). The random draws do not depend
    on the cache, so cached and uncached runs give the same samples.
    ``infill=(known_mask, tokens)`` holds known positions fixed; ``guide`` tilts each prediction toward
    an attribute (textdiff.sampling.guidance: it depends on the canvas only, so the cache stays valid). ``stats['nfe']``
    accumulates denoiser evaluations per sequence; ``stats['sequences']``, ``['evaluated_rows']``
    and ``['scored_positions']`` (masked positions given to the head) accumulate totals.
    """
    vocab, mask_id = model.vocab, model.vocab.mask_id
    L = model.config.seq_len
    x, _, _ = initial_canvas(num, L, vocab, model.graph.prior, generator, device, infill)  # known: never masked
    times = continuous_times(steps, device=device)
    cacheable = use_cache and not model.config.time_conditioning
    cache = torch.zeros(num, L, vocab.size, device=device)
    stale = torch.ones(num, dtype=torch.bool, device=device)
    evaluations = scored = 0
    for k in range(steps):
        t, s = times[k], times[k + 1]
        rows = stale if cacheable else torch.ones_like(stale)
        if rows.any():
            cache[rows] = model.log_probs(x[rows], t.expand(int(rows.sum())))
            if active(guide):
                cache[rows] = tilted_log_probs(cache[rows], guide)
            evaluations += int(rows.sum())
            scored += int((x[rows] == mask_id).sum())
        x, reveal = masked_ancestral_step(x, cache, model.schedule.alpha(t), model.schedule.alpha(s), mask_id,
                                          generator)
        stale = reveal.any(dim=1)
    if stats is not None:
        stats["nfe"] = stats.get("nfe", 0) + evaluations / num
        for key, value in (("sequences", num), ("evaluated_rows", evaluations), ("scored_positions", scored)):
            stats[key] = stats.get(key, 0) + value
    return x


def masked_ancestral_step(x: torch.Tensor, log_probs: torch.Tensor, alpha_t: torch.Tensor, alpha_s: torch.Tensor,
                          mask_id: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One step t → s: each [MASK] is revealed with probability (α_s − α_t)/(1 − α_t), drawn from
    ``log_probs`` (B, L, V) in float64; returns the new canvas and which positions were revealed."""
    reveal_p = ((alpha_s - alpha_t) / (1 - alpha_t)).clamp(0, 1)
    reveal = (x == mask_id) & (torch.rand(x.shape, generator=generator, device=x.device,
                                          dtype=torch.float64) < reveal_p)
    if reveal.any():
        logp = log_probs[reveal].double()
        x = x.clone()
        x[reveal] = torch.argmax(logp + gumbel_noise(logp.shape, generator, x.device), dim=-1)
    return x, reveal


def cache_wall_clock(model: MaskedDiffusion, num: int, steps: int, seed: int, device: torch.device) -> dict:
    """The cache claim as MDLM states it: wall-clock of ``steps``-step sampling with the cache against without,
    the same ``num`` samples (same seed; the draws do not depend on the cache, so the canvases must be equal).
    The speed-up counts only when they are."""
    def timed(use_cache: bool):
        stats: dict = {}
        generator = torch.Generator(device=device).manual_seed(seed)
        start = time.perf_counter()
        canvas = sample_canvas(model, num, steps, generator, device, use_cache, stats=stats)
        return canvas, time.perf_counter() - start, stats["nfe"]

    cached, cached_s, cached_nfe = timed(True)
    plain, plain_s, plain_nfe = timed(False)
    same = torch.equal(cached, plain)
    return {"cache_steps": steps, "cache_samples": num, "cached_wall_s": cached_s, "uncached_wall_s": plain_s,
            "cached_nfe": cached_nfe, "uncached_nfe": plain_nfe, "cache_same_samples": same,
            "cache_wall_speedup": plain_s / cached_s if same else None}


# --------------------------------------------------------------------------- what the stages call


fit = canvas_fit(build)
CANNOT_INFILL = CANNOT_GUIDE = None  # known tokens are never masked; guidance tilts p_θ(x0 | x_t)


def draw_canvas(model: MaskedDiffusion, num: int, params: MaskedSampleParams, *, generator: torch.Generator,
                device: torch.device, infill=None, guide: Guidance | None = None) -> torch.Tensor:
    """(num, L) canvases under the row's sample params, with known tokens and/or guidance (textdiff.tasks)."""
    return sample_canvas(model, num, params.steps, generator, device, params.use_cache, infill, guide=guide)


def sample_texts(model: MaskedDiffusion, tokenizer, params: MaskedSampleParams, run) -> tuple[list[str], dict]:
    stats, seed, device = {}, run.seed, run.device
    texts, speed = seeded_texts(model, lambda n, gen: generate(model, n, params.steps, gen, device, params.use_cache,
                                                               stats=stats),
                                tokenizer, params.num_samples, params.batch_size, seed=seed, device=device)
    n, L = stats["sequences"], model.config.seq_len
    flops = (stats["evaluated_rows"] * L * body_forward(model.denoiser, L)
             + stats["scored_positions"] * head_forward(model.denoiser)) / n
    return texts, {**speed, "steps": params.steps, "nfe": stats["evaluated_rows"] / n, "decoder_nfe": 0,
                   "sample_flops_per_sample": flops}


likelihood = elbo_perplexity  # the ELBO perplexity bound on the AR's token count (textdiff.eval.elbo)
LIKELIHOOD_FOOTING = "canvas"  # the bound pays for every canvas position (textdiff.eval.context_blind)
context_probe = discrete_probe  # masked NLL by share (absorbing) or partner swap (uniform): textdiff.eval.context_probe
