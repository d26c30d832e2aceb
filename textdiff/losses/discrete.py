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
