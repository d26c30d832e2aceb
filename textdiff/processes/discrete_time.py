"""Discrete-time corruption (D3PM) and the posterior q(x_s | x_t, x0) of any transition graph.

D3PM corrupts a token in T steps; step t keeps it with probability 1 − β_t and
otherwise draws it from the graph's stationary distribution m (uniform, or all
[MASK]), so Q_t = (1−β_t)I + β_t·1mᵀ and Q̄_t = Q_1⋯Q_t = ᾱ_t I + (1−ᾱ_t)·1mᵀ
with ᾱ_t = ∏(1−β). Between any two times s < t the kernel has the same form
with keep probability ᾱ_t/ᾱ_s, which lets a sampler skip steps.

Two posteriors, which the tests check against each other:

- ``posterior_from_matrices``: Bayes' rule with explicit (V, V) matrices, for any Q;
- ``log_posterior``: the closed form of the (1−β)I + β·1mᵀ family, in log space,
  used by the models (no V×V matrix is ever built).

Both accept a distribution over x0 instead of a token: with the one-hot x0 they
give q(x_s | x_t, x0); with the denoiser's p̃θ(x0 | x_t) they give D3PM's
p_θ(x_s | x_t) ∝ Σ_{x0} q(x_s, x_t | x0)·p̃θ(x0 | x_t), which is also the exact
reverse step of a graph given the clean-token distribution (SEDD's Tweedie step,
MDLM's ancestral step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class D3PMSchedule:
    """ᾱ_t for t = 0..T. ``linear``: ᾱ_t = 1 − t/T, i.e. β_t = 1/(T − t + 1), D3PM's choice for
    the absorbing graph; ``cosine``: the cosine ᾱ of Hoogeboom et al., D3PM's choice for uniform."""

    timesteps: int
    kind: str = "linear"

    def alphabar(self, device=None) -> torch.Tensor:
        t = torch.arange(self.timesteps + 1, dtype=torch.float64, device=device) / self.timesteps
        if self.kind == "linear":
            return 1 - t
        if self.kind == "cosine":
            s = 0.008
            f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
            return (f / f[0]).clamp(0, 1)
        raise ValueError(f"unknown D3PM schedule {self.kind!r}; known: ['cosine', 'linear']")

    def betas(self, device=None) -> torch.Tensor:
        """β_t for t = 1..T at index t (index 0 holds 0)."""
        a = self.alphabar(device)
        return torch.cat([a.new_zeros(1), 1 - a[1:] / a[:-1]])


def explicit_cumulative(graph, schedule: D3PMSchedule) -> list[torch.Tensor]:
    """[Q̄_0 = I, Q̄_1, …, Q̄_T] by multiplying the explicit one-step matrices (small V only)."""
    out = [torch.eye(graph.vocab_size, dtype=torch.float64)]
    for beta in schedule.betas()[1:].tolist():
        out.append(out[-1] @ graph.transition_matrix(beta))
    return out


def posterior_from_matrices(x0_probs: torch.Tensor, x_t: torch.Tensor, q_ts: torch.Tensor,
                            qbar_s: torch.Tensor) -> torch.Tensor:
    """q(x_s | x_t, x0) ∝ Q_{t|s}[x_s, x_t]·(x0ᵀ Q̄_s)[x_s], for explicit matrices; (..., V)."""
    unnorm = q_ts[:, x_t].movedim(0, -1) * (x0_probs.double() @ qbar_s)
    return unnorm / unnorm.sum(-1, keepdim=True)


def log_posterior(log_x0_probs: torch.Tensor, x_t: torch.Tensor, keep_ts: torch.Tensor, alpha_s: torch.Tensor,
                  stationary: torch.Tensor) -> torch.Tensor:
    """log q(x_s | x_t, x0) for kernels (1−β)I + β·1mᵀ, in closed form; (B, L, V).

    ``log_x0_probs`` (B, L, V) is log of a distribution over x0; ``keep_ts`` (B,) is
    ᾱ_t/ᾱ_s, the chance that no corruption happened between s and t; ``alpha_s``
    (B,) is ᾱ_s. The two factors are the column of Q_{t|s} at x_t,
    keep·δ(x_s = x_t) + (1−keep)·m[x_t], and the marginal ᾱ_s·x0 + (1−ᾱ_s)·m.
    """
    dtype = log_x0_probs.dtype
    keep, a_s = _col(keep_ts, dtype), _col(alpha_s, dtype)
    log_m = stationary.to(dtype).log()
    same = torch.nn.functional.one_hot(x_t, log_x0_probs.shape[-1]).bool()
    log_col = torch.logaddexp(torch.where(same, keep.log(), -torch.inf),
                              (1 - keep).log() + log_m[x_t][..., None])
    log_marg = torch.logaddexp(a_s.log() + log_x0_probs, (1 - a_s).log() + log_m)
    joint = log_col + log_marg
    return joint - torch.logsumexp(joint, dim=-1, keepdim=True)


def kl_categorical(log_q: torch.Tensor, log_p: torch.Tensor) -> torch.Tensor:
    """KL(q ‖ p) over the last axis, with 0·log 0 = 0."""
    q = log_q.exp()
    return torch.where(q > 0, q * (log_q - log_p), torch.zeros_like(q)).sum(-1)


def prior_kl(x0: torch.Tensor, alpha_end: float, stationary: torch.Tensor) -> torch.Tensor:
    """KL(q(x_end | x0) ‖ m) per token, (B, L): what the ELBO pays for starting from the prior.

    q(x_end | x0) = ᾱ·δ(x0) + (1−ᾱ)·m; zero when ᾱ = 0.
    """
    m = stationary.double()
    a = float(alpha_end)
    if a == 0.0:
        return torch.zeros(x0.shape, dtype=torch.float64, device=x0.device)
    q = a * torch.nn.functional.one_hot(x0, len(m)).double() + (1 - a) * m
    return kl_categorical(q.log(), m.log().expand_as(q))


def _col(v: torch.Tensor, dtype) -> torch.Tensor:
    v = torch.as_tensor(v, dtype=dtype)
    return v.view(-1, 1, 1) if v.dim() else v
