"""Losses of the discrete families, all as per-token means so their scales compare."""

from __future__ import annotations

import torch


def masked_diffusion_loss(masked_log_probs: torch.Tensor, x0: torch.Tensor, masked: torch.Tensor,
                          weight: torch.Tensor) -> torch.Tensor:
    """MDLM's ELBO: −log p_θ(x0) · (−α′/(1−α)) on masked positions; unmasked carry over (zero loss).

    ``masked_log_probs`` (N, V) holds log p_θ at the N positions where ``masked`` (B, L) is true
    (a model need not predict elsewhere); ``weight`` (B,) is −α′(t)/(1−α(t)) =
    σ(t)e^{−σ̄}/(1 − e^{−σ̄}), 1/t for log-linear. Returns the per-token loss (B, L).
    """
    nll = -masked_log_probs.gather(-1, x0[masked][:, None]).squeeze(-1)
    out = torch.zeros(x0.shape, device=x0.device, dtype=nll.dtype)
    out[masked] = nll * weight.to(nll.dtype)[:, None].expand(x0.shape)[masked]
    return out


def entropy_constant(a: torch.Tensor) -> torch.Tensor:
    """K(a) = a(log a − 1), with K(0) = 0."""
    return torch.where(a > 0, a * (torch.log(a.clamp_min(1e-30)) - 1), torch.zeros_like(a))


def score_entropy_absorb(log_score: torch.Tensor, x0: torch.Tensor, x_t: torch.Tensor, mask_id: int,
                         sigma: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
    """SEDD score entropy for the absorbing graph, per token (B, L).

    At a masked position the true ratios are r_y = δ(y = x0)/(e^{σ̄} − 1) for y ≠ [MASK]; the loss is
    σ(t)·[Σ_y s_y − r·log s_{x0} + K(r)]. Unmasked positions have no reverse transitions here: zero.
    """
    ratio = 1 / torch.expm1(total.double()).view(-1, 1)
    s = log_score.double().exp()
    s = s.clone()
    s[..., mask_id] = 0
    log_s_x0 = log_score.double().gather(-1, x0[..., None]).squeeze(-1)
    value = s.sum(-1) - ratio * log_s_x0 + entropy_constant(ratio)
    return (sigma.double().view(-1, 1) * value * (x_t == mask_id)).to(log_score.dtype)


def score_entropy_absorb_scaled(z: torch.Tensor, x0: torch.Tensor, x_t: torch.Tensor, mask_id: int,
                                weight: torch.Tensor) -> torch.Tensor:
    """``score_entropy_absorb`` for scores parametrised as s_y = r·e^{z_y}, in a form finite at α = 0.

    Substituting s = r·e^z into σ·[Σ s − r·log s_{x0} + K(r)] cancels every log r:
    σ·r·(Σ_y e^{z_y} − z_{x0} − 1), and σ·r = −α′/(1−α) is ``weight`` (B,). ``z``
    (B, L, V) must be −inf at [MASK]. Returns (B, L); zero at unmasked positions.
    """
    masked = x_t == mask_id
    z = z.float()
    value = torch.logsumexp(z, -1).exp() - z.gather(-1, x0[..., None]).squeeze(-1) - 1
    return torch.where(masked, weight.view(-1, 1).to(z.dtype) * value, torch.zeros_like(value))


def uniform_ratios(alpha: torch.Tensor, vocab_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """True ratios p_t(y | x0)/p_t(x_t | x0) of the uniform graph, y ≠ x_t, with p_t = α·δ(x0) + (1−α)/V.

    Returns (a, b): when x_t = x0 every y has ratio a = (1−α)/(1−α+Vα); when
    x_t ≠ x0 the ratio is b = 1 + Vα/(1−α) at y = x0 and 1 elsewhere.
    """
    alpha = alpha.double()
    return (1 - alpha) / (1 - alpha + vocab_size * alpha), 1 + vocab_size * alpha / (1 - alpha)


def score_entropy_uniform(log_score: torch.Tensor, x0: torch.Tensor, x_t: torch.Tensor, sigma: torch.Tensor,
                          alpha: torch.Tensor) -> torch.Tensor:
    """SEDD score entropy for the uniform graph, per token (B, L).

    The forward rate into x_t from each y is σ/V, so the loss is
    (σ/V)·Σ_{y≠x_t} [s_y − r_y·log s_y + K(r_y)] with the ratios of ``uniform_ratios``.
    ``log_score`` (B, L, V) is log s; its entry at x_t is ignored. ``sigma`` and
    ``alpha`` are σ(t) and α(t) = e^{−σ̄(t)}, (B,).
    """
    V = log_score.shape[-1]
    a, b = (r.view(-1, 1) for r in uniform_ratios(alpha, V))
    log_s = log_score.double()
    own = torch.nn.functional.one_hot(x_t, V).bool()
    sum_s = log_s.masked_fill(own, -torch.inf).logsumexp(-1).exp()
    sum_log_s = log_s.masked_fill(own, 0).sum(-1)
    log_s_x0 = log_s.gather(-1, x0[..., None]).squeeze(-1)
    clean = x_t == x0
    weighted_log = torch.where(clean, a * sum_log_s, sum_log_s + (b - 1) * log_s_x0)
    constant = torch.where(clean, (V - 1) * entropy_constant(a).expand_as(sum_s),
                           -(V - 2) + entropy_constant(b).expand_as(sum_s))
    value = sum_s - weighted_log + constant
    return (sigma.double().view(-1, 1) / V * value).to(log_score.dtype)


def d3pm_hybrid_loss(kl: torch.Tensor, log_x0_pred: torch.Tensor, x0: torch.Tensor, num_train_timesteps: int,
                     hybrid_lambda: float) -> tuple[torch.Tensor, torch.Tensor]:
    """D3PM's L_λ per token at one sampled t: T·(KL(q(x_{t−1}|x_t,x0) ‖ p_θ(x_{t−1}|x_t)) + λ·(−log p̃θ(x0|x_t))).

    λ means what it means in D3PM's reference code, which trains KL_t + λ·CE at one sampled t (λ = 0.01
    for text): the factor T scales both terms alike, so that the first is an unbiased estimate of the
    per-token ELBO (t uniform on 1..T; at t = 1 q is the one-hot x0 and the KL is −log p_θ(x0|x_1)) and
    the loss reads in nats like every other row's. ``kl`` (B, L) is the posterior KL at the sampled t
    (``posterior_kl``); the prior term is added where the bound is reported. Returns (loss, elbo_term),
    both (B, L).
    """
    ce = -log_x0_pred.gather(-1, x0[..., None]).squeeze(-1)
    return num_train_timesteps * (kl + hybrid_lambda * ce), num_train_timesteps * kl
