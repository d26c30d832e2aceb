"""Generate texts in batches and time it: the speed figures every family reports."""

from __future__ import annotations

import time
from typing import Callable

import torch

from textdiff.progress import Progress


def generate_texts(generate_ids: Callable[[int], list[list[int]]], tokenizer, num: int,
                   batch_size: int) -> tuple[list[str], dict]:
    """Call ``generate_ids(n)`` until ``num`` sequences exist; decode them; return texts and speed.

    tokens/s counts the generated text tokens plus one <eos> per sample.
    """
    texts, tokens, t0 = [], 0, time.perf_counter()
    with Progress(-(-num // batch_size), "sample", unit="batches") as progress:
        for start in range(0, num, batch_size):
            ids = generate_ids(min(batch_size, num - start))
            tokens += sum(len(s) + 1 for s in ids)
            texts += tokenizer.batch_decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
            progress.update(1, samples=len(texts))
    wall = time.perf_counter() - t0
    return texts, {"wall_s": wall, "samples_per_s": len(texts) / wall, "tokens_per_s": tokens / wall,
                   "mean_tokens": tokens / max(len(texts), 1)}


def seeded_texts(model, generate_ids: Callable[[int, torch.Generator], list[list[int]]], tokenizer, num: int,
                 batch_size: int, *, seed: int, device) -> tuple[list[str], dict]:
    """``generate_texts`` for a model put in eval mode on ``device``, with one generator seeded by ``seed``
    shared by every batch: the ``sample_texts`` of every family."""
    gen = torch.Generator(device=device).manual_seed(seed)
    model.to(device).eval()
    return generate_texts(lambda n: generate_ids(n, gen), tokenizer, num, batch_size)
