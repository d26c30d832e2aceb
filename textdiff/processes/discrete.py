"""Discrete diffusion over token ids: transition graphs and noise schedules.

A continuous-time process corrupts each token independently with rate σ(t)
along a transition graph Q; the total noise σ̄(t) = ∫₀ᵗ σ fixes the marginals:

- absorbing: a token becomes [MASK] with probability 1 − e^{−σ̄(t)} and stays so;
- uniform: a token is resampled uniformly with probability 1 − e^{−σ̄(t)}
  (it may land on itself).

Schedules give σ̄(t) and its rate σ(t) = dσ̄/dt for t in [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from textdiff.losses.discrete import score_entropy_absorb_scaled, score_entropy_uniform


# --------------------------------------------------------------------------- schedules
#
# Each schedule gives the keep probability α(t) = e^{−σ̄(t)} and its derivative
# α′(t) directly, so that α(1) = 0 (a fully corrupted x_1, equal to the prior)
# stays finite in every formula written in α; ``total`` and ``rate`` (σ̄, σ) are
# for the formulas that need them and may be infinite at t = 1.


@dataclass(frozen=True)
class LogLinear:
    """α(t) = 1 − (1−ε)t: the masked fraction grows linearly; ε = 0 reaches the all-[MASK] prior at t = 1."""

    eps: float = 0.0

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        return 1 - (1 - self.eps) * t

    def alpha_rate(self, t: torch.Tensor) -> torch.Tensor:
        return torch.full_like(t, -(1 - self.eps))

    def total(self, t: torch.Tensor) -> torch.Tensor:
        return -torch.log1p(-(1 - self.eps) * t)

    def rate(self, t: torch.Tensor) -> torch.Tensor:
        return (1 - self.eps) / (1 - (1 - self.eps) * t)


@dataclass(frozen=True)
class Geometric:
    """σ̄(t) = σ_min^{1−t}·σ_max^t − σ_min (SEDD's choice for the uniform graph).

    SEDD's σ̄ starts at σ_min; subtracting it makes σ̄(0) = 0 exactly, so the ELBO
    integral from t = 0 needs no reconstruction term. σ̄(1) ≈ σ_max stays finite,
    which the uniform graph's score entropy needs (its rate multiplies every term).
    """

    sigma_min: float = 1e-4
    sigma_max: float = 20.0

    def total(self, t: torch.Tensor) -> torch.Tensor:
        return self.sigma_min ** (1 - t) * self.sigma_max ** t - self.sigma_min

    def rate(self, t: torch.Tensor) -> torch.Tensor:
        return self.sigma_min ** (1 - t) * self.sigma_max ** t * math.log(self.sigma_max / self.sigma_min)

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        return torch.exp(-self.total(t))

    def alpha_rate(self, t: torch.Tensor) -> torch.Tensor:
        return -self.rate(t) * self.alpha(t)


@dataclass(frozen=True)
class Cosine:
    """α(t) = (1−ε)·cos(πt/2) + ε: nothing is corrupted at t = 0, a fraction 1−ε at t = 1 (α(1) = ε
    exactly: cos(π/2) is 6e-17 in floating point, which on the absorbing graph would make the prior
    term infinite)."""

    eps: float = 0.0

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        keep = torch.where(t < 1, torch.cos(math.pi * t / 2), torch.zeros_like(t))
        return (1 - self.eps) * keep + self.eps

    def alpha_rate(self, t: torch.Tensor) -> torch.Tensor:
        return -(1 - self.eps) * math.pi / 2 * torch.sin(math.pi * t / 2)

    def total(self, t: torch.Tensor) -> torch.Tensor:
        return -torch.log(self.alpha(t))

    def rate(self, t: torch.Tensor) -> torch.Tensor:
        return -self.alpha_rate(t) / self.alpha(t)


def masked_weight(schedule, t: torch.Tensor) -> torch.Tensor:
    """−α′/(1−α): the continuous-time ELBO weight of a corrupted token (1/t for log-linear, ε = 0)."""
    return -schedule.alpha_rate(t) / (1 - schedule.alpha(t))


def antithetic_times(batch: int, device=None, generator=None) -> torch.Tensor:
    """t_i = (u + i/B) mod 1 for one uniform u: low-variance Monte-Carlo over t."""
    u = torch.rand(1, generator=generator, device=device, dtype=torch.float64)
    return continuous_time((u + torch.arange(batch, device=device, dtype=torch.float64) / batch) % 1.0)


def continuous_time(frac: torch.Tensor) -> torch.Tensor:
    """A uniform draw in [0, 1) as t in [1e-5, 1]: the floor keeps the weight −α′/(1−α) (1/t) finite."""
    return frac.clamp(1e-5, 1.0)


def time_for_share(schedule, share: float) -> torch.Tensor:
    """The continuous time t at which a share ``share`` of the tokens is corrupted, 1 − α(t) = share (float64
    scalar, solved on a grid of 10,001 times: exact enough for a probe, for any schedule)."""
    grid = torch.linspace(1e-5, 1.0, 10_001, dtype=torch.float64)
    return grid[torch.argmin((1 - schedule.alpha(grid) - share).abs())]


DISCRETE_SCHEDULES = {"loglinear": LogLinear, "geometric": Geometric, "cosine": Cosine}


def discrete_schedule(name: str):
    if name not in DISCRETE_SCHEDULES:
        raise ValueError(f"unknown discrete noise schedule {name!r}; known: {sorted(DISCRETE_SCHEDULES)}")
    return DISCRETE_SCHEDULES[name]()


# --------------------------------------------------------------------------- graphs
#
# A graph owns the maths that depends on where a token can jump: corruption, the
# stationary prior, and (for SEDD) how the network's logits z become scores, the
# score entropy, and the Euler and Tweedie reverse steps written with those scores.
# The methods take a schedule and times t, s (scalar or (B,)) rather than raw σ, α.


@dataclass(frozen=True)
class Absorbing:
    """Every token jumps to [MASK] (``mask_id``) at rate σ; [MASK] never leaves."""

    vocab_size: int
    mask_id: int
    prior: ClassVar[str] = "mask"  # how a sampler's x_1 canvas is drawn (sampling.discrete_sampler.initial_canvas)

    def corrupt(self, x0: torch.Tensor, total_noise: torch.Tensor, generator=None) -> torch.Tensor:
        hit = _hits(x0, total_noise, generator)
        return torch.where(hit, torch.full_like(x0, self.mask_id), x0)

    def stationary(self, device=None) -> torch.Tensor:
        """The limit distribution m: all mass on [MASK]."""
        m = torch.zeros(self.vocab_size, dtype=torch.float64, device=device)
        m[self.mask_id] = 1
        return m

    def transition_matrix(self, beta: float) -> torch.Tensor:
        """One discrete step: stay with probability 1 − β, else jump to [MASK]."""
        return step_matrix(self, beta)

    def restrict_x0(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits over x0, which is never [MASK]: −inf there, in place."""
        logits[..., self.mask_id] = float("-inf")
        return logits

    # ------------------------------------------------------------ SEDD's scores

    def score_logits(self, z: torch.Tensor, x_t: torch.Tensor) -> torch.Tensor:
        """log s = z + log r with r = α/(1−α): z offset by −log(V−1) so an untrained network starts at
        Σ_y s_y ≈ r (SEDD's scaling), −inf at [MASK]."""
        return self.restrict_x0(z - math.log(self.vocab_size - 1))

    def log_score(self, z: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """log s_y = z_y + log(α/(1−α)), (B, L, V) with ``alpha`` (B,)."""
        return z + torch.log(alpha / (1 - alpha)).float().view(-1, 1, 1)

    def score_entropy(self, z: torch.Tensor, x0: torch.Tensor, x_t: torch.Tensor, schedule,
                      t: torch.Tensor) -> torch.Tensor:
        """Score entropy per token (B, L) in the scaled form, finite at α = 0 (losses.discrete)."""
        return score_entropy_absorb_scaled(z, x0, x_t, self.mask_id, masked_weight(schedule, t))

    def euler_probs(self, z: torch.Tensor, x_t: torch.Tensor, schedule, t: torch.Tensor,
                    s: torch.Tensor) -> torch.Tensor:
        """At [MASK], y with (t − s)·rate(mask → y) = (t − s)·(−α′/(1−α))·e^{z_y}; revealed tokens stay."""
        jump = (t - s) * masked_weight(schedule, t) * z.exp()
        return _stay_with_the_rest(jump * (x_t == self.mask_id)[..., None], x_t)

    def tweedie_probs(self, z: torch.Tensor, x_t: torch.Tensor, alpha_t, alpha_s) -> torch.Tensor:
        """At [MASK]: y with (α_s − α_t)/α_t·s_y = (α_s − α_t)/(1 − α_t)·e^{z_y}, stay with 1 − Σ_y of those.

        The stay weight follows SEDD's reference (its AnalyticPredictor: staggered score times the transposed
        transition), which sums to one whatever the scores: with exact scores (Σ e^z = 1) the stay is
        (1 − α_s)/(1 − α_t) and this is MDLM's masked ancestral step; with unnormalised ones the reveals keep
        their size and the stay takes the rest. A stay below zero (Σ reveals > 1) is clipped to 0, which is
        what the reference's Gumbel-argmax draw does with a negative weight. Revealed tokens stay.
        """
        masked = (x_t == self.mask_id)[..., None]
        reveal = ((alpha_s - alpha_t) / (1 - alpha_t)) * z.exp()
        probs = torch.where(masked, reveal.scatter(-1, x_t[..., None], 0.0), torch.zeros_like(reveal))
        stay = (1 - probs.sum(-1)).clamp_min(0)
        own = torch.where(masked[..., 0], stay, torch.ones_like(stay))
        return probs.scatter(-1, x_t[..., None], own[..., None])


@dataclass(frozen=True)
class Uniform:
    """Every token is resampled uniformly over the ``vocab_size`` tokens at rate σ."""

    vocab_size: int
    prior: ClassVar[str] = "uniform"  # how a sampler's x_1 canvas is drawn (sampling.discrete_sampler.initial_canvas)

    def corrupt(self, x0: torch.Tensor, total_noise: torch.Tensor, generator=None) -> torch.Tensor:
        hit = _hits(x0, total_noise, generator)
        noise = torch.randint(0, self.vocab_size, x0.shape, generator=generator, device=x0.device)
        return torch.where(hit, noise, x0)

    def stationary(self, device=None) -> torch.Tensor:
        """The limit distribution m: uniform."""
        return torch.full((self.vocab_size,), 1 / self.vocab_size, dtype=torch.float64, device=device)

    def transition_matrix(self, beta: float) -> torch.Tensor:
        """One discrete step: keep with probability 1 − β, else draw uniformly (possibly itself)."""
        return step_matrix(self, beta)

    def restrict_x0(self, logits: torch.Tensor) -> torch.Tensor:
        """Any token can be x0: the logits as they are."""
        return logits

    # ------------------------------------------------------------ SEDD's scores

    def score_logits(self, z: torch.Tensor, x_t: torch.Tensor) -> torch.Tensor:
        """log s = z with z = 0 at x_t (s_{x_t} = 1)."""
        return z.scatter(-1, x_t[..., None], 0.0)

    def log_score(self, z: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """log s = z: no scale."""
        return z

    def score_entropy(self, z: torch.Tensor, x0: torch.Tensor, x_t: torch.Tensor, schedule,
                      t: torch.Tensor) -> torch.Tensor:
        """Score entropy per token (B, L) (losses.discrete)."""
        return score_entropy_uniform(z, x0, x_t, schedule.rate(t), schedule.alpha(t))

    def euler_probs(self, z: torch.Tensor, x_t: torch.Tensor, schedule, t: torch.Tensor,
                    s: torch.Tensor) -> torch.Tensor:
        """y ≠ x_t with (t − s)·rate(x_t → y) = (t − s)·(σ/V)·s_y; x_t keeps the rest."""
        jump = ((t - s) * schedule.rate(t) / self.vocab_size) * z.exp()
        return _stay_with_the_rest(jump.scatter(-1, x_t[..., None], 0.0), x_t)

    def tweedie_probs(self, z: torch.Tensor, x_t: torch.Tensor, alpha_t, alpha_s) -> torch.Tensor:
        """With keep = α_t/α_s: p(y) ∝ [keep·δ(y = x_t) + (1−keep)/V]·[s_y − (1−keep)·S/V], S = Σ s.

        From p_s(y)/p_t(x_t) = (s_y − (1−keep)·S/V)/keep (invert the uniform kernel
        with 1/p_t(x_t) = S) times the kernel q(x_t | x_s = y); negative brackets,
        which only inexact scores give, are clipped to zero. In float64: the bracket cancels to ~α_t.
        """
        score, keep = z.double().exp(), float(alpha_t / alpha_s)
        V = score.shape[-1]
        score = score.scatter(-1, x_t[..., None], 1.0)
        marginal = (score - (1 - keep) * score.sum(-1, keepdim=True) / V).clamp_min(0)
        kernel = torch.full_like(score, (1 - keep) / V).scatter_add(-1, x_t[..., None],
                                                                      torch.full_like(score[..., :1], keep))
        return kernel * marginal


def _stay_with_the_rest(jump: torch.Tensor, x_t: torch.Tensor) -> torch.Tensor:
    """Euler: x_t keeps the probability the jumps (zero at x_t) leave, clipped at 0."""
    stay = (1 - jump.sum(-1, keepdim=True)).clamp_min(0)
    return jump.scatter_add(-1, x_t[..., None], stay)


def step_matrix(graph, beta: float) -> torch.Tensor:
    """Q = (1−β)·I + β·1mᵀ (rows: from, columns: to), explicit (V, V) in float64.

    Both graphs have this form with their stationary m, and products of such
    matrices keep it: Q̄_t = ᾱ_t·I + (1−ᾱ_t)·1mᵀ. The explicit matrices are for
    tests and small vocabularies; the models use the closed forms.
    """
    m = graph.stationary()
    return torch.eye(len(m), dtype=torch.float64) * (1 - beta) + beta * m[None, :]


def graph_for(name: str, vocab_size: int, mask_id: int | None):
    if name == "absorbing":
        if mask_id is None:
            raise ValueError("the absorbing graph needs a tokenizer with a <mask> token")
        return Absorbing(vocab_size, mask_id)
    if name == "uniform":
        return Uniform(vocab_size)
    raise ValueError(f"unknown transition graph {name!r}; known: ['absorbing', 'uniform']")


def _hits(x0: torch.Tensor, total_noise: torch.Tensor, generator) -> torch.Tensor:
    """Which tokens the process touches: each with probability 1 − e^{−σ̄} (σ̄ may be +inf)."""
    p = -torch.expm1(-total_noise.double().view(-1, *([1] * (x0.dim() - 1))))
    return torch.rand(x0.shape, generator=generator, device=x0.device, dtype=torch.float64) < p
