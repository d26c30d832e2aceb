"""Discrete-time corruption (D3PM) and the posterior q(x_s | x_t, x0) of any transition graph.

D3PM corrupts a token in T steps; step t keeps it with probability 1 − β_t and
otherwise draws it from the graph's stationary distribution m (uniform, or all
[MASK]), so Q_t = (1−β_t)I + β_t·1mᵀ and Q̄_t = Q_1⋯Q_t = ᾱ_t I + (1−ᾱ_t)·1mᵀ
with ᾱ_t = ∏(1−β). Between any two times s < t the kernel has the same form
with keep probability ᾱ_t/ᾱ_s, which lets a sampler skip steps.

Two posteriors, which the tests check against each other:

- ``posterior_from_matrices``: Bayes' rule with explicit (V, V) matrices, for any Q;
- ``posterior``: the closed form of the (1−β)I + β·1mᵀ family, used by the samplers
  (no V×V matrix is ever built), and ``posterior_kl``, the KL of two such
  posteriors straight from gathers, used by the D3PM loss.

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


D3PM_SCHEDULES = ("linear", "cosine", "cosine_squared")


@dataclass(frozen=True)
class D3PMSchedule:
    """ᾱ_t for t = 0..T, with ᾱ_T = 0 so that x_T is the prior and the prior term vanishes.

    - ``linear``: ᾱ_t = 1 − t/T, i.e. β_t = 1/(T − t + 1), D3PM's choice for the absorbing graph;
    - ``cosine``: ᾱ_t ∝ cos(((t/T + s)/(1 + s))·π/2), s = 0.008, as D3PM's reference code builds its
      cosine β (google-research d3pm, after Hoogeboom et al. 2021): the cosine itself, not its square;
      ᾱ_{T/2} ≈ 0.70. The reference clips β_T at 0.999, which leaves ᾱ_T ≈ 1.5e-6 at T = 1000; here
      ᾱ_T = 0, without which the absorbing graph's prior term would be infinite;
    - ``cosine_squared``: Nichol & Dhariwal's cos² (the Gaussian rows' cosine), ᾱ_{T/2} ≈ 0.49.
    """

    num_train_timesteps: int
    kind: str = "linear"

    def alphabar(self, device=None) -> torch.Tensor:
        t = torch.arange(self.num_train_timesteps + 1, dtype=torch.float64, device=device) / self.num_train_timesteps
        if self.kind == "linear":
            return 1 - t
        if self.kind in ("cosine", "cosine_squared"):
            s = 0.008
            f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** (2 if self.kind == "cosine_squared" else 1)
            a = (f / f[0]).clamp(0, 1)
            a[-1] = 0.0
            return a
        raise ValueError(f"unknown D3PM schedule {self.kind!r}; known: {list(D3PM_SCHEDULES)}")

    def betas(self, device=None) -> torch.Tensor:
        """β_t for t = 1..T at index t (index 0 holds 0)."""
        a = self.alphabar(device)
        return torch.cat([a.new_zeros(1), 1 - a[1:] / a[:-1]])


def integer_time(frac: torch.Tensor, num_train_timesteps: int) -> torch.Tensor:
    """A uniform draw in [0, 1) as an integer step t = ⌊frac·T⌋ + 1 in 1..T."""
    return (frac * num_train_timesteps).long().clamp(0, num_train_timesteps - 1) + 1


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


def posterior(x0_probs: torch.Tensor, x_t: torch.Tensor, keep_ts: torch.Tensor, alpha_s: torch.Tensor,
              stationary: torch.Tensor, normalise: bool = True) -> torch.Tensor:
    """q(x_s | x_t, x0) for kernels (1−β)I + β·1mᵀ, in closed form; (B, L, V).

    ``x0_probs`` (B, L, V) is a distribution over x0; ``keep_ts`` (B,) or scalar is
    ᾱ_t/ᾱ_s, the chance that no corruption happened between s and t; ``alpha_s``
    is ᾱ_s. The two factors are the column of Q_{t|s} at x_t,
    keep·δ(x_s = x_t) + (1−keep)·m[x_t], and the marginal ᾱ_s·x0 + (1−ᾱ_s)·m,
    whose product is (1−keep)·m[x_t]·marg plus keep·marg(x_t) at x_t. The
    normaliser is keep·marg(x_t) + (1−keep)·m[x_t] since Σ marg = 1.
    """
    dtype = x0_probs.dtype
    keep, a_s = _col(keep_ts, dtype), _col(alpha_s, dtype)
    m = stationary.to(device=x0_probs.device, dtype=dtype)
    marg = a_s * x0_probs + (1 - a_s) * m
    m_t = m[x_t][..., None]
    marg_t = marg.gather(-1, x_t[..., None])
    out = ((1 - keep) * m_t * marg).scatter_add(-1, x_t[..., None], keep.expand_as(marg_t) * marg_t)
    return out / (keep * marg_t + (1 - keep) * m_t) if normalise else out


def posterior_kl(log_x0_pred: torch.Tensor, x0: torch.Tensor, x_t: torch.Tensor, keep_ts: torch.Tensor,
                 alpha_s: torch.Tensor, stationary: torch.Tensor) -> torch.Tensor:
    """KL(q(x_s | x_t, x0) ‖ p_θ(x_s | x_t)) per token (B, L), without forming either distribution.

    Equal to ``kl_categorical`` of the logs of two ``posterior`` calls (the tests
    check it) at a fraction of the cost: both posteriors share the factor col(y) =
    keep·δ(y = x_t) + (1−keep)·m[x_t], which cancels in the log-ratio, leaving the
    marginals margq = ᾱ_s·δ(x0) + (1−ᾱ_s)·m and margp = ᾱ_s·p̃θ + (1−ᾱ_s)·m; q is a
    few spikes on a multiple of m, so every sum over V reduces to gathers at x_t
    and x0 plus the m-weighted sum of log margp over m's support (one index for
    the absorbing graph, all V for the uniform one). The normalisers are
    closed-form since Σ margq = Σ margp = 1: Z = keep·marg(x_t) + (1−keep)·m[x_t].
    """
    k = torch.as_tensor(keep_ts, dtype=torch.float64, device=x0.device).view(-1, 1)
    a = torch.as_tensor(alpha_s, dtype=torch.float64, device=x0.device).view(-1, 1)
    m = stationary.to(x0.device)
    m_t, m_0 = m[x_t], m[x0]

    # Logs are floored at −1e4 (e^{−1e4} = 0): a −inf would give nan gradients even where a zero
    # coefficient drops the term (autograd multiplies 0 by the inf/nan local derivative).
    floor = -1e4

    def log_margp_at(lp: torch.Tensor, m_y: torch.Tensor) -> torch.Tensor:
        return torch.logaddexp((a.log() + lp.double()).clamp_min(floor), ((1 - a) * m_y).log().clamp_min(floor))

    lmp_t = log_margp_at(log_x0_pred.gather(-1, x_t[..., None]).squeeze(-1), m_t)
    lmp_0 = log_margp_at(log_x0_pred.gather(-1, x0[..., None]).squeeze(-1), m_0)
    support = torch.nonzero(m).squeeze(-1)
    lp_support = log_x0_pred if len(support) == len(m) else log_x0_pred[..., support]  # no copy when dense
    a3, m_s = a.to(log_x0_pred.dtype)[..., None], m[support]
    on_support = torch.log((a3 * lp_support.exp() + (1 - a3) * m_s.to(a3.dtype)).clamp_min(
        torch.finfo(a3.dtype).tiny))
    m_log_margp = (on_support @ m_s.to(a3.dtype)).double()
    entropy_m = -(m_s * m_s.log()).sum()
    m_log_margq = (1 - a).log() - entropy_m + torch.where(m_0 > 0, m_0 * torch.log1p(a / ((1 - a) * m_0)), 0)

    margq_t = a * (x_t == x0) + (1 - a) * m_t
    margq_0 = a + (1 - a) * m_0
    z_q = k * margq_t + (1 - k) * m_t
    z_p = k * lmp_t.exp() + (1 - k) * m_t

    def times(coef, value):  # 0·(anything) = 0, also where the value is ±inf or nan
        return torch.where(coef > 0, coef * value, torch.zeros_like(coef))

    stationary_part = times(1 - a, m_log_margq - m_log_margp)
    expectation = (times(k * margq_t, margq_t.log() - lmp_t)
                   + times((1 - k) * m_t, times(a.expand_as(margq_0), margq_0.log() - lmp_0) + stationary_part)) / z_q
    return (expectation + z_p.log() - z_q.log()).to(log_x0_pred.dtype)


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
