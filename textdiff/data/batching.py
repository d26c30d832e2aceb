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


def batch_indices(lengths: list[int], batch_size: int, step: int, seed: int, bucket_batches: int = 50) -> list[int]:
    """Indices of the batch at training ``step``: deterministic in (step, seed), so a
    resumed run sees exactly the batches an uninterrupted run would.

    Each epoch is a seeded permutation cut into chunks of ``bucket_batches``
    batches; each chunk is sorted by length before it is cut into batches, and
    the batch order is shuffled again. Batches then hold sentences of similar
    length and padding costs little (dynamic padding to the batch's longest).
    """
    epoch = step // _batches_per_epoch(len(lengths), batch_size)
    batches = _epoch_batches(tuple(lengths), batch_size, seed, epoch, bucket_batches)
    return batches[step % len(batches)]


def _batches_per_epoch(n_items: int, batch_size: int) -> int:
    return max(1, n_items // batch_size)


_EPOCH_CACHE: dict[tuple, list[list[int]]] = {}


def _epoch_batches(lengths: tuple[int, ...], batch_size: int, seed: int, epoch: int, bucket_batches: int) -> list[list[int]]:
    key = (hash(lengths), batch_size, seed, epoch, bucket_batches)
    if key not in _EPOCH_CACHE:
        if len(_EPOCH_CACHE) > 4:
            _EPOCH_CACHE.clear()
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        n = len(lengths)
        perm = torch.randperm(n, generator=g).tolist()
        if n < batch_size:  # tiny corpora: repeat to fill one batch
            perm = (perm * (batch_size // max(n, 1) + 1))[:batch_size]
        usable = perm[: _batches_per_epoch(len(perm), batch_size) * batch_size]
        chunk = batch_size * bucket_batches
        batches = []
        for c in range(0, len(usable), chunk):
            part = sorted(usable[c:c + chunk], key=lambda i: lengths[i])
            batches += [part[b:b + batch_size] for b in range(0, len(part), batch_size)]
        order = torch.randperm(len(batches), generator=g).tolist()
        _EPOCH_CACHE[key] = [batches[i] for i in order]
    return _EPOCH_CACHE[key]


def training_batches(tokenizer, texts: list[str], seq_len: int, batch_size: int, seed: int,
                     fixed_length: bool):
    """``batch_fn(step) -> (B, L) token ids`` over ``<bos> text <eos>`` sequences.

    ``fixed_length`` pads every batch to ``seq_len`` (diffusion models see a fixed
    canvas); otherwise batches are padded to their longest sequence (AR).
    """
    pad_id = tokenizer.pad_token_id
    seqs = encode_sequences(tokenizer, texts, seq_len)
    lengths = [len(s) for s in seqs]

    def batch_fn(step: int) -> torch.Tensor:
        rows = [seqs[i] for i in batch_indices(lengths, batch_size, step, seed)]
        return pad_batch(rows, pad_id, length=seq_len if fixed_length else None)

    return batch_fn
