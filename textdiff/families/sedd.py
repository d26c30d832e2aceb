"""SEDD (Lou et al. 2024): score-entropy discrete diffusion — rows ``sedd_absorb``, ``sedd_uniform``.

Composition:
- state: token ids on a fixed canvas ``<bos> tokens <eos> <pad>…`` (as mdlm);
- process: continuous time, each token corrupted at rate σ(t) along the graph
  (``absorbing``: to [MASK], log-linear schedule; ``uniform``: to a uniform token,
  geometric schedule) — textdiff.processes.discrete;
- score network: the shared bidirectional backbone conditioned on t, giving the
  concrete score s_θ(x_t)_y ≈ p_t(y)/p_t(x_t) for every position and token y
  (absorbing: only [MASK] positions have reverse rates, so the output head and
  the vocabulary-wide loss run there alone, as in MDLM):
  absorbing: s_y = r·e^{z_y} with r = α/(1−α) and z offset by −log(V−1) so an
  untrained network starts at Σ_y s_y ≈ r (SEDD's scaling); uniform: s_y = e^{z_y},
  s_{x_t} = 1;
- loss: denoising score entropy with its constant K (textdiff.losses.discrete),
  antithetic t, per canvas token — an unbiased estimate of the ELBO integrand;
- likelihood: ∫₀¹ score entropy dt (Monte-Carlo over t) + KL(q(x_1|x0) ‖ prior);
- samplers: Euler (x_s = y with probability Δt·rate(x_t → y)) or Tweedie τ-leaping
  (the exact reverse step p_s(y)/p_t(x_t)·q(x_t | y) written with the scores);
  either way the last step, to t = 0, is the Tweedie denoising step.
"""

from __future__ import annotations

import torch

from textdiff.params.sedd import SEDDModelParams, SEDDParams, SEDDSampleParams
from textdiff.data.vocab import Vocab
from textdiff.nn import BackboneConfig, DenoiserModel, Transformer
from textdiff.processes.discrete import antithetic_times, continuous_time, discrete_schedule, graph_for, time_for_share
from textdiff.processes.discrete_time import prior_kl
from textdiff.eval.context_probe import discrete_probe
from textdiff.eval.elbo import elbo_perplexity, stratified_bound
from textdiff.sampling.batched import seeded_texts
from textdiff.sampling.discrete_sampler import initial_canvas, reverse_sample
from textdiff.sampling.grid import continuous_times
from textdiff.training.fit import canvas_fit
from textdiff.training.flops import denoising_flops, masked_head_flops_per_token

PARAMS = SEDDParams


class SEDD(DenoiserModel):
    def __init__(self, config: SEDDModelParams, vocab: Vocab):
        super().__init__()
        self.config, self.vocab = config, vocab  # the row's model params: all a module is built from
        self.denoiser = Transformer(BackboneConfig.from_params(config, causal=False, vocab_size=vocab.size,
                                                               time_conditioning=True))
        self.graph = graph_for(config.graph, vocab.size, vocab.mask_id)
        self.schedule = discrete_schedule(config.schedule)

    @property
    def absorbing(self) -> bool:
        return self.graph.prior == "mask"

    # ---------------------------------------------------------------- the score (graph maths: processes.discrete)

    def score_logits(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """z (B, L, V), float32. Uniform: log s = z, z = 0 at x_t. Absorbing: log s = z + log r, z = −inf at
        [MASK]; a revealed token has no reverse rates, so the head runs only at masked positions and z is −inf
        across the others (no sampler reads them)."""
        if not self.absorbing:
            return self.graph.score_logits(self.denoiser(x_t, t).float(), x_t)
        masked = x_t == self.vocab.mask_id
        z = torch.full((*x_t.shape, self.vocab.size), float("-inf"), device=x_t.device)
        z[masked] = self.masked_score_logits(x_t, t, masked)
        return z

    def masked_score_logits(self, x_t: torch.Tensor, t: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        """Absorbing: z at the masked positions only, (N_masked, V)."""
        h = self.denoiser.hidden(x_t, t)[masked]
        return self.graph.score_logits(self.denoiser.head(h).float(), x_t[masked])

    def log_score(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """log s_θ(x_t)_y (B, L, V)."""
        return self.graph.log_score(self.score_logits(x_t, t), self.schedule.alpha(t))

    # ---------------------------------------------------------------- loss and ELBO

    def token_losses(self, x0: torch.Tensor, t: torch.Tensor, generator=None) -> torch.Tensor:
        """Score entropy per token (B, L) at times t (B,); absorbing: computed at the masked positions, zero at
        the others (as the graph's score entropy is there)."""
        x_t = self.graph.corrupt(x0, self.schedule.total(t), generator)
        if not self.absorbing:
            return self.graph.score_entropy(self.score_logits(x_t, t), x0, x_t, self.schedule, t)
        masked = x_t == self.vocab.mask_id
        z = self.masked_score_logits(x_t, t, masked)[:, None]  # each masked position as a canvas of one
        at_masked = self.graph.score_entropy(z, x0[masked][:, None], x_t[masked][:, None], self.schedule,
                                             t[:, None].expand_as(x0)[masked])
        losses = torch.zeros(x0.shape, dtype=at_masked.dtype, device=x0.device)
        losses[masked] = at_masked[:, 0]
        return losses

    def loss(self, x0: torch.Tensor) -> torch.Tensor:
        return self.token_losses(x0, antithetic_times(x0.shape[0], x0.device)).mean()

    @torch.no_grad()
    def nll_bound(self, x0: torch.Tensor, draws: int, generator: torch.Generator | None = None,
                  per_draw: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Per-sequence upper bound on −log p(x0) in nats: ∫₀¹ score entropy over ``draws`` stratified t + prior.

        ``per_draw=True`` also returns the (B, draws) single-draw estimates (prior + score
        entropy at that draw's t) whose mean is the bound; the bound and the random draws are the same.
        """
        alpha_1 = self.schedule.alpha(torch.ones((), dtype=torch.float64)).item()
        prior = prior_kl(x0, alpha_1, self.graph.stationary(x0.device)).sum(1)
        return stratified_bound(self.token_losses, x0, draws, continuous_time, generator, prior, per_draw)

    # ---------------------------------------------------------------- accounting

    def flops_per_token(self, seq_len: int, training: bool = True) -> float:
        """Absorbing: the head at a fraction E_t[1 − α(t)] of the canvas (1/2 for log-linear), in training, the
        ELBO and (on the sampler's time grid, about the same share) sampling; uniform: everywhere."""
        if not self.absorbing:
            return self.denoiser.flops_per_token(seq_len, training)
        return masked_head_flops_per_token(self.denoiser, self.schedule, seq_len, training)

    # ---------------------------------------------------------------- reverse steps (B, L, V) probabilities

    def euler_probs(self, x_t: torch.Tensor, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """x_s = y ≠ x_t with probability (t − s)·rate(x_t → y); the rest of the mass stays at x_t."""
        z = self.score_logits(x_t, t.expand(x_t.shape[0]))
        return self.graph.euler_probs(z, x_t, self.schedule, t, s)

    def tweedie_probs(self, x_t: torch.Tensor, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """The exact reverse step if the scores are exact: p(x_s = y | x_t) = q(x_t | x_s = y)·p_s(y)/p_t(x_t)."""
        z = self.score_logits(x_t, t.expand(x_t.shape[0]))
        return self.graph.tweedie_probs(z, x_t, self.schedule.alpha(t), self.schedule.alpha(s))

    def x0_log_probs_at_share(self, x_t: torch.Tensor, share: float) -> torch.Tensor:
        """(B, L, V) log of the denoising distribution the scores imply, the Tweedie step to s = 0 (α = 1), asked
        at the time when a share ``share`` of tokens is corrupted (the probes of textdiff.eval.context_probe).

        Absorbing: p_θ(x0) ∝ e^z at [MASK], a revealed token certain. Uniform: Tweedie's bracket clips
        inexact scores to 0, so the distribution is mixed with 1e-6 of the uniform one (a true token the
        scores rule out then costs −log(1e-6/V), about 22 nats, not infinity)."""
        t = time_for_share(self.schedule, share).to(x_t.device)
        z = self.score_logits(x_t, t.expand(x_t.shape[0]))
        if self.absorbing:
            out = torch.log_softmax(z, -1)
            keep = x_t != self.vocab.mask_id
            out[keep] = float("-inf")
            out[keep] = out[keep].scatter(-1, x_t[keep][:, None], 0.0)
            return out
        probs = self.graph.tweedie_probs(z, x_t, self.schedule.alpha(t), torch.ones((), dtype=torch.float64))
        probs = probs / probs.sum(-1, keepdim=True).clamp_min(1e-300)
        return ((1 - 1e-6) * probs + 1e-6 / probs.shape[-1]).log().float()


def build(params: SEDDParams, vocab: Vocab) -> SEDD:
    return SEDD(params.model, vocab)


# --------------------------------------------------------------------------- sampling


def euler_step(model: SEDD, x_t: torch.Tensor, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Euler steps, except the last, to t = 0, which is the Tweedie denoising step."""
    return model.euler_probs(x_t, t, s) if s > 0 else model.tweedie_probs(x_t, t, s)


def tweedie_step(model: SEDD, x_t: torch.Tensor, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    return model.tweedie_probs(x_t, t, s)


SAMPLERS = {"euler": euler_step, "tweedie": tweedie_step}  # sample.method -> step (SEDDSampleParams lists the same)


@torch.no_grad()
def sample_canvas(model: SEDD, num: int, steps: int, generator: torch.Generator, device: torch.device,
                  method: str = "tweedie", infill: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """``steps`` reverse steps from t = 1 (the prior) to 0 with the ``SAMPLERS[method]`` step; (num, L) canvas."""
    if method not in SAMPLERS:
        raise ValueError(f"unknown SEDD sampler {method!r}; known: {sorted(SAMPLERS)}")
    step = SAMPLERS[method]
    x, known, values = initial_canvas(num, model.config.seq_len, model.vocab, model.graph.prior, generator,
                                      device, infill)
    return reverse_sample(lambda x_t, t, s: step(model, x_t, t, s), x, known, values,
                          continuous_times(steps, device=device), generator)


def generate(model: SEDD, num: int, steps: int, generator: torch.Generator, device: torch.device,
             method: str = "tweedie", infill: tuple[torch.Tensor, torch.Tensor] | None = None) -> list[list[int]]:
    canvas = sample_canvas(model, num, steps, generator, device, method, infill)
    return [model.vocab.strip(row) for row in canvas.tolist()]


# --------------------------------------------------------------------------- what the stages call


fit = canvas_fit(build)
CANNOT_INFILL = None  # known tokens are held by the reverse loop
CANNOT_GUIDE = ("its samplers step on learned score ratios, not on an x0 distribution that a classifier's "
                "gradient could tilt; guidance for SEDD is not built")


def draw_canvas(model: SEDD, num: int, params: SEDDSampleParams, *, generator: torch.Generator,
                device: torch.device, infill=None, guide=None) -> torch.Tensor:
    """(num, L) canvases under the row's sample params with known tokens held (textdiff.tasks)."""
    if guide is not None:
        raise ValueError(f"sedd cannot be guided: {CANNOT_GUIDE}")
    return sample_canvas(model, num, params.steps, generator, device, params.method, infill)


def sample_texts(model: SEDD, tokenizer, params: SEDDSampleParams, run) -> tuple[list[str], dict]:
    texts, speed = seeded_texts(model, lambda n, gen: generate(model, n, params.steps, gen, run.device, params.method),
                                tokenizer, params.num_samples, params.batch_size, seed=run.seed, device=run.device)
    return texts, {**speed, "steps": params.steps, "method": params.method, "nfe": params.steps, "decoder_nfe": 0,
                   "sample_flops_per_sample": denoising_flops(model, model.config.seq_len, params.steps)}


likelihood = elbo_perplexity  # the ELBO perplexity bound on the AR's token count (textdiff.eval.elbo)
LIKELIHOOD_FOOTING = "canvas"  # the bound pays for every canvas position (textdiff.eval.context_blind)
context_probe = discrete_probe  # masked NLL by share (absorbing) or partner swap (uniform): textdiff.eval.context_probe
cache_wall_clock = None  # no network cache that skips denoiser calls (MDLM's claim; textdiff.families.mdlm)
