"""Autoregressive decoding of a latent: greedy, top-p and beam search, all through the KV cache.

The decoder is the project backbone (causal, with cross-attention to the latent
vectors). Sequences start at <bos> and end at <eos>; a finished row only appends
<pad> and no longer changes its score. <bos>, <pad> and <mask> are never targets in
training, so they are never chosen.
"""

from __future__ import annotations

import torch

from textdiff.data.vocab import Vocab
from textdiff.nn import Transformer
from textdiff.sampling.autoregressive import ban, sample_sequences


def never_chosen(vocab: Vocab) -> tuple[int, ...]:
    return tuple(i for i in (vocab.bos_id, vocab.pad_id, vocab.mask_id) if i is not None)


def sample_tokens(decoder: Transformer, memory: torch.Tensor, vocab: Vocab, *, top_p: float = 1.0,
                  greedy: bool = False, generator: torch.Generator | None = None,
                  use_cache: bool = True, stats: dict | None = None) -> list[list[int]]:
    """One sequence per latent (B, M, dim): the argmax (``greedy``) or a top-p draw at each position."""
    return sample_sequences(decoder, memory.shape[0], vocab, memory=memory, top_p=top_p, greedy=greedy,
                            banned=never_chosen(vocab), generator=generator, use_cache=use_cache, stats=stats)


@torch.no_grad()
def beam_search(decoder: Transformer, memory: torch.Tensor, vocab: Vocab, beam_size: int,
                length_penalty: float = 1.0, stats: dict | None = None) -> list[list[int]]:
    """The highest-scoring of ``beam_size`` beams per latent, score = log p / length^length_penalty.

    Beams live in one batch of B·K rows; after each step the cache rows are
    reordered to the surviving beams (``KVCache.select``). ``stats['batches']``
    gets (B, network calls); each call runs K rows per latent.
    """
    B, K = memory.shape[0], beam_size
    device = memory.device
    mem = memory.repeat_interleave(K, dim=0)
    seq = torch.full((B * K, 1), vocab.bos_id, dtype=torch.long, device=device)
    scores = torch.zeros(B, K, device=device)
    scores[:, 1:] = float("-inf")  # all beams start identical: expand only the first
    lengths = torch.zeros(B * K, device=device)
    done = torch.zeros(B * K, dtype=torch.bool, device=device)
    cache = decoder.new_cache(B * K)
    calls = 0
    for _ in range(decoder.cfg.max_len - 1):
        calls += 1
        step_input = seq if cache.length == 0 else seq[:, -1:]
        logits = decoder.head(decoder.hidden(step_input, cache=cache, memory=mem)[:, -1]).float()
        logp = ban(logits, never_chosen(vocab)).log_softmax(-1)
        V = logp.shape[-1]
        finished = torch.full_like(logp, float("-inf"))
        finished[:, vocab.pad_id] = 0.0  # a finished beam continues with <pad> at no cost
        logp = torch.where(done[:, None], finished, logp)
        total = (scores.view(B * K, 1) + logp).view(B, K * V)
        scores, flat = total.topk(K, dim=1)
        rows = (torch.arange(B, device=device)[:, None] * K + flat // V).view(-1)
        token = (flat % V).view(-1)
        cache.select(rows)
        seq = torch.cat([seq[rows], token[:, None]], dim=1)
        was_done = done[rows]
        lengths = lengths[rows] + (~was_done).float()
        done = was_done | (token == vocab.eos_id)
        if bool(done.all()):
            break
    if stats is not None:
        stats.setdefault("batches", []).append((B, calls))
    normalised = scores / lengths.view(B, K).clamp_min(1.0) ** length_penalty
    best = normalised.argmax(1) + torch.arange(B, device=device) * K
    return [vocab.strip(row) for row in seq[best, 1:].tolist()]


def decode_latents(decoder: Transformer, memory: torch.Tensor, vocab: Vocab, method: str, *, beam_size: int = 4,
                   top_p: float = 1.0, generator: torch.Generator | None = None,
                   stats: dict | None = None) -> list[list[int]]:
    """``stats['batches']`` collects (latents, decoder calls) per call (for the sampling cost)."""
    if method == "greedy":
        return sample_tokens(decoder, memory, vocab, greedy=True, stats=stats)
    if method == "top_p":
        return sample_tokens(decoder, memory, vocab, top_p=top_p, generator=generator, stats=stats)
    if method == "beam":
        return beam_search(decoder, memory, vocab, beam_size, stats=stats)
    raise ValueError(f"unknown decoding {method!r} (greedy | beam | top_p)")
