"""Token sequences for the models and a deterministic, resumable batch order."""

from __future__ import annotations

import torch


def encode_sequences(tokenizer, texts: list[str], seq_len: int) -> list[list[int]]:
    """``<bos> tokens <eos>``, truncated to ``seq_len`` (a truncated text loses its <eos>)."""
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    return [([bos] + seq + [eos])[:seq_len] for seq in ids]


def pad_batch(seqs: list[list[int]], pad_id: int, length: int | None = None) -> torch.Tensor:
    """Right-pad to ``length`` (default: the longest in the batch)."""
    length = length or max(len(s) for s in seqs)
    out = torch.full((len(seqs), length), pad_id, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s[:length], dtype=torch.long)
    return out


def batch_indices(n_items: int, batch_size: int, step: int, seed: int) -> list[int]:
    """Indices of the batch at training ``step``.

    Each epoch is a fresh seeded permutation; the batch depends only on
    (step, seed), so a resumed run sees exactly the batches an uninterrupted run
    would.
    """
    start = step * batch_size
    out: list[int] = []
    while len(out) < batch_size:
        epoch, offset = divmod(start + len(out), n_items)
        perm = _epoch_permutation(n_items, seed, epoch)
        take = min(batch_size - len(out), n_items - offset)
        out.extend(perm[offset:offset + take].tolist())
    return out


_PERM_CACHE: dict[tuple[int, int, int], torch.Tensor] = {}


def _epoch_permutation(n_items: int, seed: int, epoch: int) -> torch.Tensor:
    key = (n_items, seed, epoch)
    if key not in _PERM_CACHE:
        if len(_PERM_CACHE) > 4:
            _PERM_CACHE.clear()
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        _PERM_CACHE[key] = torch.randperm(n_items, generator=g)
    return _PERM_CACHE[key]
