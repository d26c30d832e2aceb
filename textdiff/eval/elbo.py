"""Held-out perplexity bounds of the discrete diffusion families, comparable with the AR's exact perplexity."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from textdiff.data.batching import encode_sequences, pad_batch
from textdiff.eval.heldout_interval import heldout_interval

TokenTerms = Callable[[torch.Tensor, torch.Tensor, torch.Generator | None], torch.Tensor]


def stratified_bound(token_terms: TokenTerms, x0: torch.Tensor, draws: int,
                     time_of: Callable[[torch.Tensor], torch.Tensor], generator: torch.Generator | None = None,
                     prior: torch.Tensor | None = None,
                     per_draw: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Per-sequence bound on −log p(x0): ``prior`` (B,) plus the mean over ``draws`` stratified times of the
    summed ``token_terms(x0, t, generator)`` (B, L), each an unbiased single-t estimate of the ELBO integral.

    Draw k takes t = time_of((k + u)/draws), u ~ U[0, 1) per sequence in float64, then the term's own
    draws from the same generator, so the generator alone fixes the bound. ``per_draw=True`` also
    returns the (B, draws) single-draw estimates (prior + draw k's term) whose mean is the bound.
    """
    if prior is None:
        prior = torch.zeros(x0.shape[0], dtype=torch.float64, device=x0.device)
    total = prior.clone()
    terms = []
    for k in range(draws):
        u = torch.rand(x0.shape[0], generator=generator, device=x0.device, dtype=torch.float64)
        term = token_terms(x0, time_of((k + u) / draws), generator).double().sum(1)
        total += term / draws
        terms.append(term)
    return (total, prior[:, None] + torch.stack(terms, 1)) if per_draw else total


def mc_standard_error(per_draw: torch.Tensor, tokens: int) -> float | None:
    """Monte-Carlo standard error of the per-token estimate R = Σ_i Ȳ_i / N.

    ``per_draw`` (n, D): Y_ik, sequence i's single-draw bound estimate at draw k, so
    Ȳ_i = mean_k Y_ik is the bound the model reports for sequence i; N = ``tokens``.
    N is fixed by the held-out texts (no ratio of random quantities, so the delta
    method reduces to this), and the draws of different sequences are independent,
    so Var(R) = Σ_i Var(Ȳ_i) / N², each Var(Ȳ_i) estimated by s_i² / D with s_i² the
    sample variance of sequence i's D draws:

        se = sqrt(Σ_i s_i² / D) / N.

    The draws are stratified in t (draw k in [k/D, (k+1)/D)); s_i² also counts the
    spread between strata, which stratification removes, so this over-states the
    error (conservative). It is the Monte-Carlo error only, given the held-out
    texts, as the AR's exact perplexity has none. None when D < 2.
    """
    per_draw = per_draw.double()
    draws = per_draw.shape[1]
    if draws < 2 or tokens <= 0:
        return None
    return math.sqrt(per_draw.var(dim=1, unbiased=True).sum().item() / draws) / tokens


def elbo_perplexity(model, tokenizer, texts: list[str], *, device: torch.device, batch_size: int = 64,
                    draws: int = 16, seed: int = 0) -> dict:
    """exp(Σ bound on −log p(canvas) / Σ (text tokens + <eos>)), from ``model.nll_bound(batch, draws, gen)``.

    The denominator counts the tokens the AR model's exact perplexity counts, so
    the two compare; the canvas's <bos> and padding are part of what the bound
    pays for (the text fixes them), so it stays an upper bound on the text's
    perplexity. Sequences longer than the canvas are truncated, as in training
    and as the AR likelihood truncates them.

    The interval (``textdiff.eval.heldout_interval``) combines a bootstrap over the
    held-out sentences with the Monte-Carlo standard error over the t draws
    (``mc_standard_error``, None with a single draw).
    """
    vocab = model.vocab
    L = model.config.seq_len
    seqs = encode_sequences(tokenizer, texts, L)
    gen = torch.Generator(device=device).manual_seed(seed)
    bounds, per_draw, tokens = [], [], []
    model.to(device).eval()
    for i in range(0, len(seqs), batch_size):
        batch = pad_batch(seqs[i:i + batch_size], vocab.pad_id, length=L).to(device)
        bound, draws_values = model.nll_bound(batch, draws, gen, per_draw=True)
        bounds.append(bound.double().cpu())
        per_draw.append(draws_values.cpu())
        tokens += [len(s) - 1 for s in seqs[i:i + batch_size]]  # tokens after <bos>, as the AR counts
    per_sentence, count = torch.cat(bounds).numpy(), sum(tokens)
    nats = float(per_sentence.sum()) / count
    return {"heldout_ppl": math.exp(nats), "heldout_ppl_bound": f"ELBO upper bound, {draws} t draws",
            "heldout_nats_per_token": nats, "heldout_tokens": count,
            **heldout_interval(per_sentence, np.array(tokens), mc_standard_error(torch.cat(per_draw), count), seed=seed)}
