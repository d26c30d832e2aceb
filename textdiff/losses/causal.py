"""The causal LM's per-sequence negative log-likelihood: the AR row's exact likelihood and the judge's score."""

from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def sequence_nll(model, batch: torch.Tensor, vocab) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sequence summed NLL (nats) of every token after <bos>, <eos> included, and token counts (scoring
    only: no gradient)."""
    logits = model(batch[:, :-1]).float()
    targets = batch[:, 1:]
    nll = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    mask = targets != vocab.pad_id
    return (nll * mask).sum(1), mask.sum(1)
