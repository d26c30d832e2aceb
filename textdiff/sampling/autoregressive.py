"""Left-to-right sampling from a causal backbone through its KV cache: the AR baseline's generator and the
autoencoders' decoders (which also read a ``memory`` through cross-attention).

With or without the cache the same random draws are used in the same order, so under a fixed seed both
give the same sequences.
"""

from __future__ import annotations

import torch

from textdiff.data.vocab import Vocab
from textdiff.nn import Transformer
from textdiff.sampling.categorical import sample_categorical


@torch.no_grad()
def sample_sequences(model: Transformer, num: int, vocab: Vocab, *, memory: torch.Tensor | None = None,
                     max_len: int | None = None, temperature: float = 1.0, top_p: float = 1.0, greedy: bool = False,
                     banned: tuple[int, ...] = (), generator: torch.Generator | None = None,
                     use_cache: bool = True, stats: dict | None = None) -> list[list[int]]:
    """``num`` sequences from <bos>, each cut before its <eos>: the argmax (``greedy``) or a draw at
    ``temperature`` from the top-p nucleus at every position; ``banned`` ids are never chosen.
    ``stats['batches']`` gets (num, network calls): every row runs until the whole batch is done."""
    seq = sample_canvas(model, num, vocab, memory=memory, max_len=max_len, temperature=temperature, top_p=top_p,
                        greedy=greedy, banned=banned, generator=generator, use_cache=use_cache, stats=stats)
    return [vocab.strip(row) for row in seq[:, 1:].tolist()]


@torch.no_grad()
def sample_canvas(model: Transformer, num: int, vocab: Vocab, *, memory: torch.Tensor | None = None,
                  max_len: int | None = None, temperature: float = 1.0, top_p: float = 1.0, greedy: bool = False,
                  banned: tuple[int, ...] = (), generator: torch.Generator | None = None, use_cache: bool = True,
                  stats: dict | None = None, forced: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """The (num, T) token ids behind ``sample_sequences``, <bos> first, <pad> after each <eos>.
    ``forced=(known, tokens)`` (num, L): a known position takes its token instead of the draw, even after the
    row's <eos> (the draw is still made, so the random stream is the same); a row is done at its first
    <eos>, drawn or known, and its later draws are <pad>."""
    device = next(model.parameters()).device
    max_len = min(max_len or model.cfg.max_len, model.cfg.max_len)
    if forced is not None:
        max_len = min(max_len, forced[0].shape[1])
    seq = torch.full((num, 1), vocab.bos_id, dtype=torch.long, device=device)
    done = torch.zeros(num, dtype=torch.bool, device=device)
    cache = model.new_cache(num) if use_cache else None
    calls = 0
    for _ in range(max_len - 1):
        calls += 1
        step_input = seq[:, -1:] if (cache is not None and cache.length > 0) else seq
        logits = model.head(model.hidden(step_input, cache=cache, memory=memory)[:, -1])  # the head only where needed
        if banned:
            logits = ban(logits, banned)
        nxt = logits.argmax(-1) if greedy else sample_categorical(logits, temperature, top_p, generator)
        nxt = torch.where(done, torch.full_like(nxt, vocab.pad_id), nxt)
        if forced is not None:
            i = seq.shape[1]
            nxt = torch.where(forced[0][:, i], forced[1][:, i], nxt)
        seq = torch.cat([seq, nxt[:, None]], dim=1)
        done |= nxt == vocab.eos_id
        if bool(done.all()):
            break
    if stats is not None:
        stats.setdefault("batches", []).append((num, calls))
    return seq


def ban(logits: torch.Tensor, ids: tuple[int, ...]) -> torch.Tensor:
    return logits.index_fill(-1, torch.tensor(ids, device=logits.device), float("-inf"))
