"""Categorical sampling with temperature and nucleus (top-p) filtering.

Gumbel noise is drawn in float64: float32 uniforms truncate the Gumbel tail,
which silently lowers the temperature and flatters generative perplexity.
"""

from __future__ import annotations

import torch


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Set to -inf every logit outside the smallest set whose probability reaches ``top_p``.

    The most likely token always stays, so ``top_p`` near 0 is greedy decoding.
    """
    if top_p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits.float(), dim=-1)
    mass_before = torch.cumsum(probs, dim=-1) - probs
    drop_sorted = mass_before >= top_p
    drop_sorted[..., 0] = False
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def gumbel_noise(shape, generator: torch.Generator | None, device) -> torch.Tensor:
    u = torch.rand(shape, generator=generator, device=device, dtype=torch.float64)
    u = u.clamp_(min=torch.finfo(torch.float64).tiny)
    return -torch.log(-torch.log(u))


def sample_categorical(logits: torch.Tensor, temperature: float = 1.0, top_p: float = 1.0,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """One draw per row of ``logits`` (..., V) by the Gumbel-max trick, in float64."""
    logits = top_p_filter(logits.double() / temperature, top_p)
    return torch.argmax(logits + gumbel_noise(logits.shape, generator, logits.device), dim=-1)


def sample_nucleus(logits: torch.Tensor, top_p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """One draw per row of ``logits`` (..., V) from its top-p nucleus, by inverse CDF in float64.

    The same distribution as ``sample_categorical(logits, 1.0, top_p)`` with one uniform per row instead of V
    Gumbel draws, and one sort of the float32 logits (the order float64 would give) instead of a float64 sort:
    the simplex sampler draws every position at every step, where those were three quarters of its time.
    """
    shape, V = logits.shape[:-1], logits.shape[-1]
    sorted_logits, order = torch.sort(logits.reshape(-1, V), dim=-1, descending=True)
    probs = torch.softmax(sorted_logits.double(), dim=-1)
    cdf = torch.cumsum(probs, dim=-1)
    size = ((cdf - probs) < top_p).sum(-1, keepdim=True).clamp_min(1) if top_p < 1.0 else None
    mass = cdf[:, -1:] if size is None else cdf.gather(-1, size - 1)  # the nucleus: a prefix of the sorted tokens
    u = torch.rand(cdf.shape[0], 1, generator=generator, device=logits.device, dtype=torch.float64)
    idx = torch.searchsorted(cdf, u * mass, right=True)  # below the nucleus' size: cdf[size - 1] = mass > u·mass
    return order.gather(-1, idx.clamp_max(V - 1)).reshape(shape)


def sample_from_probs(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One draw per row of unnormalised ``probs`` (N, V) by inverse CDF in float64.

    One cumulative sum and one uniform per row: cheaper than Gumbel-max over V
    when probabilities (not logits) are at hand, and as exact in the tails.
    """
    cdf = probs.double().cumsum(-1)
    u = torch.rand(probs.shape[0], 1, generator=generator, device=probs.device, dtype=torch.float64)
    idx = torch.searchsorted(cdf, u * cdf[:, -1:], right=True)
    return idx.squeeze(-1).clamp_max(probs.shape[-1] - 1)
