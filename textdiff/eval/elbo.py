"""Held-out perplexity bounds of the discrete diffusion families, comparable with the AR's exact perplexity."""

from __future__ import annotations

import math

import torch

from textdiff.data.batching import encode_sequences, pad_batch


def elbo_perplexity(model, tokenizer, texts: list[str], *, device: torch.device, batch_size: int = 64,
                    draws: int = 16, seed: int = 0) -> dict:
    """exp(Σ bound on −log p(canvas) / Σ (text tokens + <eos>)), from ``model.nll_bound(batch, draws, gen)``.

    The denominator counts the tokens the AR model's exact perplexity counts, so
    the two compare; the canvas's <bos> and padding are part of what the bound
    pays for (the text fixes them), so it stays an upper bound on the text's
    perplexity. Sequences longer than the canvas are truncated, as in training
    and as the AR likelihood truncates them.
    """
    vocab = model.vocab
    L = model.params.model.seq_len
    seqs = encode_sequences(tokenizer, texts, L)
    gen = torch.Generator(device=device).manual_seed(seed)
    nll, count = 0.0, 0
    model.to(device).eval()
    for i in range(0, len(seqs), batch_size):
        batch = pad_batch(seqs[i:i + batch_size], vocab.pad_id, length=L).to(device)
        nll += model.nll_bound(batch, draws, gen).sum().item()
        count += sum(len(s) - 1 for s in seqs[i:i + batch_size])  # tokens after <bos>, as the AR counts
    return {"heldout_ppl": math.exp(nll / count), "heldout_ppl_bound": f"ELBO upper bound, {draws} t draws",
            "heldout_nats_per_token": nll / count, "heldout_tokens": count}
