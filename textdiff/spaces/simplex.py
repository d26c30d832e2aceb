"""The ±k logit simplex of SSD-LM / TESS.

A token w becomes the almost-one-hot logit vector s0 = 2k·onehot(w) − k
(+k at w, −k elsewhere). The forward process is the shared Gaussian one with
its noise scaled by k, s_t = √ᾱ·s0 + √(1−ᾱ)·k·ε, so the noise stays
commensurate with the logits whatever k is. Each reverse step maps the
model's logits back onto the ±k simplex: by one token drawn from the top-p
nucleus, or by the multi-hot vector of the whole nucleus.
"""

from __future__ import annotations

import torch

from textdiff.processes.gaussian import GaussianProcess
from textdiff.sampling.categorical import sample_categorical, top_p_filter

PROJECTIONS = ("sample", "top_p")


def token_simplex(tokens: torch.Tensor, vocab_size: int, k: float) -> torch.Tensor:
    """(B, L) ids → (B, L, V): +k at the token, −k everywhere else."""
    s = torch.full((*tokens.shape, vocab_size), -k, device=tokens.device)
    return s.scatter_(-1, tokens[..., None], k)


def noised(process: GaussianProcess, s0: torch.Tensor, t: torch.Tensor, k: float, noise: torch.Tensor) -> torch.Tensor:
    """s_t = √ᾱ(t)·s0 + √(1−ᾱ(t))·k·ε."""
    return process.q_sample(s0, t, k * noise)


def nucleus_simplex(logits: torch.Tensor, top_p: float, k: float) -> torch.Tensor:
    """+k on every token of the top-p nucleus, −k elsewhere; ``top_p`` = 0 keeps only the argmax."""
    kept = torch.isfinite(top_p_filter(logits, top_p))  # the most likely token always stays
    return torch.where(kept, k, -k).to(logits.dtype)


def project(logits: torch.Tensor, method: str, top_p: float, k: float,
            generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Map logits (B, L, V) back onto the ±k simplex; return (tokens (B, L), simplex (B, L, V)).

    ``sample`` draws one token from the top-p nucleus (in float64) and returns its ±k vector;
    ``top_p`` returns the nucleus multi-hot, and the argmax as the token.
    """
    if method == "sample":
        tokens = sample_categorical(logits, 1.0, top_p, generator)
        return tokens, token_simplex(tokens, logits.shape[-1], k).to(logits.dtype)
    if method == "top_p":
        return logits.argmax(-1), nucleus_simplex(logits, top_p, k)
    raise ValueError(f"unknown simplex projection {method!r}; known: {PROJECTIONS}")
