"""SEDD (Lou et al. 2024): score-entropy discrete diffusion — rows ``sedd_absorb``, ``sedd_uniform``.

Composition:
- state: token ids on a fixed canvas ``<bos> tokens <eos> <pad>…`` (as mdlm);
- process: continuous time, each token corrupted at rate σ(t) along the graph
  (``absorbing``: to [MASK], log-linear schedule; ``uniform``: to a uniform token,
  geometric schedule) — textdiff.processes.discrete;
- score network: the shared bidirectional backbone conditioned on t, giving the
  concrete score s_θ(x_t)_y ≈ p_t(y)/p_t(x_t) for every position and token y:
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

import math

import torch

from textdiff.config import SEDDParams, SEDDSampleParams
from textdiff.data.vocab import Vocab
from textdiff.losses.discrete import score_entropy_absorb_scaled, score_entropy_uniform
from textdiff.nn import BackboneConfig, DenoiserModel, Transformer
from textdiff.processes.discrete import antithetic_times, discrete_schedule, graph_for, masked_weight
from textdiff.processes.discrete_time import prior_kl
from textdiff.eval.elbo import elbo_perplexity
from textdiff.sampling.batched import seeded_texts
from textdiff.sampling.discrete_sampler import initial_canvas, reverse_sample
from textdiff.training.fit import canvas_fit
from textdiff.training.flops import denoising_flops

PARAMS = SEDDParams


class SEDD(DenoiserModel):
    def __init__(self, params: SEDDParams, vocab: Vocab):
        super().__init__()
        self.params, self.vocab = params, vocab
        m = params.model
        self.denoiser = Transformer(BackboneConfig.from_params(m, causal=False, vocab_size=vocab.size,
                                                               time_conditioning=True))
        self.graph = graph_for(m.graph, vocab.size, vocab.mask_id)
        self.schedule = discrete_schedule(m.schedule)
        self.absorbing = m.graph == "absorbing"

    # ---------------------------------------------------------------- the score

    def score_logits(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """z (B, L, V), float32. Absorbing: log s = z + log r, z = −inf at [MASK]. Uniform: log s = z, z = 0 at x_t."""
        z = self.denoiser(x_t, t).float()
        if self.absorbing:
            z = z - math.log(self.vocab.size - 1)
            z[..., self.vocab.mask_id] = float("-inf")
            return z
        return z.scatter(-1, x_t[..., None], 0.0)

    def log_score(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """log s_θ(x_t)_y (B, L, V)."""
        z = self.score_logits(x_t, t)
        if not self.absorbing:
            return z
        alpha = self.schedule.alpha(t)
        return z + torch.log(alpha / (1 - alpha)).float().view(-1, 1, 1)

    # ---------------------------------------------------------------- loss and ELBO

    def token_losses(self, x0: torch.Tensor, t: torch.Tensor, generator=None) -> torch.Tensor:
        """Score entropy per token (B, L) at times t (B,)."""
        x_t = self.graph.corrupt(x0, self.schedule.total(t), generator)
        z = self.score_logits(x_t, t)
        if self.absorbing:
            return score_entropy_absorb_scaled(z, x0, x_t, self.vocab.mask_id, masked_weight(self.schedule, t))
        return score_entropy_uniform(z, x0, x_t, self.schedule.rate(t), self.schedule.alpha(t))

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
        total = prior.clone()
        terms = []
        for k in range(draws):
            u = torch.rand(x0.shape[0], generator=generator, device=x0.device, dtype=torch.float64)
            t = ((k + u) / draws).clamp(1e-5, 1.0)
            term = self.token_losses(x0, t, generator).double().sum(1)
            total += term / draws
            terms.append(term)
        if per_draw:
            return total, prior[:, None] + torch.stack(terms, 1)
        return total

    # ---------------------------------------------------------------- reverse steps (B, L, V) probabilities

    def euler_probs(self, x_t: torch.Tensor, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """x_s = y ≠ x_t with probability (t − s)·rate(x_t → y); the rest of the mass stays at x_t."""
        z = self.score_logits(x_t, t.expand(x_t.shape[0]))
        if self.absorbing:  # rate(mask → y) = σ·s_y = (−α′/(1−α))·e^{z_y}
            jump = (t - s) * masked_weight(self.schedule, t) * z.exp()
            jump = jump * (x_t == self.vocab.mask_id)[..., None]
        else:  # rate(x_t → y) = (σ/V)·s_y
            jump = ((t - s) * self.schedule.rate(t) / self.vocab.size) * z.exp()
            jump = jump.scatter(-1, x_t[..., None], 0.0)
        stay = (1 - jump.sum(-1, keepdim=True)).clamp_min(0)
        return jump.scatter_add(-1, x_t[..., None], stay)

    def tweedie_probs(self, x_t: torch.Tensor, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """The exact reverse step if the scores are exact: p(x_s = y | x_t) = q(x_t | x_s = y)·p_s(y)/p_t(x_t)."""
        z = self.score_logits(x_t, t.expand(x_t.shape[0]))
        a_t, a_s = self.schedule.alpha(t), self.schedule.alpha(s)
        if self.absorbing:
            return absorbing_tweedie(z, x_t, a_t, a_s, self.vocab.mask_id)
        return uniform_tweedie(z.double().exp(), x_t, a_t / a_s)  # float64: the bracket cancels to ~α_t


def absorbing_tweedie(z: torch.Tensor, x_t: torch.Tensor, alpha_t, alpha_s, mask_id: int) -> torch.Tensor:
    """At [MASK]: y with (α_s − α_t)/α_t·s_y = (α_s − α_t)/(1 − α_t)·e^{z_y}, stay with (1 − α_s)/(1 − α_t).

    With e^z = p_θ (normalised) this is exactly the masked ancestral step. Revealed tokens stay.
    """
    masked = (x_t == mask_id)[..., None]
    reveal = ((alpha_s - alpha_t) / (1 - alpha_t)) * z.exp()
    stay = (1 - alpha_s) / (1 - alpha_t)
    probs = torch.where(masked, reveal, torch.zeros_like(reveal))
    own = torch.where(masked[..., 0], torch.as_tensor(stay, dtype=probs.dtype), torch.ones_like(probs[..., 0]))
    return probs.scatter(-1, x_t[..., None], own[..., None])


def uniform_tweedie(score: torch.Tensor, x_t: torch.Tensor, keep) -> torch.Tensor:
    """Uniform graph, ``keep`` = α_t/α_s: p(y) ∝ [keep·δ(y = x_t) + (1−keep)/V]·[s_y − (1−keep)·S/V], S = Σ s.

    From p_s(y)/p_t(x_t) = (s_y − (1−keep)·S/V)/keep (invert the uniform kernel
    with 1/p_t(x_t) = S) times the kernel q(x_t | x_s = y); negative brackets,
    which only inexact scores give, are clipped to zero.
    """
    V, keep = score.shape[-1], float(keep)
    score = score.scatter(-1, x_t[..., None], 1.0)
    marginal = (score - (1 - keep) * score.sum(-1, keepdim=True) / V).clamp_min(0)
    kernel = torch.full_like(score, (1 - keep) / V).scatter_add(-1, x_t[..., None],
                                                                  torch.full_like(score[..., :1], keep))
    return kernel * marginal


def build(params: SEDDParams, vocab: Vocab) -> SEDD:
    return SEDD(params, vocab)


# --------------------------------------------------------------------------- sampling


@torch.no_grad()
def sample_canvas(model: SEDD, num: int, steps: int, generator: torch.Generator, device: torch.device,
                  method: str = "tweedie", infill: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """``steps`` reverse steps from t = 1 (the prior) to 0; returns the (num, L) canvas."""
    if method not in ("tweedie", "euler"):
        raise ValueError(f"unknown SEDD sampler {method!r}; known: ['euler', 'tweedie']")
    prior = "mask" if model.absorbing else "uniform"
    x, known, values = initial_canvas(num, model.params.model.seq_len, model.vocab, prior, generator, device, infill)

    def step_probs(x_t: torch.Tensor, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        if method == "euler" and s > 0:
            return model.euler_probs(x_t, t, s)
        return model.tweedie_probs(x_t, t, s)  # Tweedie steps, and the final denoising step of both

    times = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64, device=device)
    return reverse_sample(step_probs, x, known, values, times, generator)


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


def sample_texts(model: SEDD, tokenizer, params: SEDDSampleParams, *, seed: int,
                 device: torch.device, space_dir=None) -> tuple[list[str], dict]:
    texts, speed = seeded_texts(model, lambda n, gen: generate(model, n, params.steps, gen, device, params.method),
                                tokenizer, params.num_samples, params.batch_size, seed=seed, device=device)
    return texts, {**speed, "steps": params.steps, "method": params.method, "nfe": params.steps, "decoder_nfe": 0,
                   "sample_flops_per_sample": denoising_flops(model, model.params.model.seq_len, params.steps)}


likelihood = elbo_perplexity  # the ELBO perplexity bound on the AR's token count (textdiff.eval.elbo)
