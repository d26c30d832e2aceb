"""Does a masked (absorbing) model use context? Masked NLL as a function of the share masked.

Mask a share of the real (non-pad) positions of held-out canvases, ask the model for
p_θ(x0 | x_t) there, and average −log p_θ(x0) over the masked real positions. A model
that reads its context gets better as more of the sentence is visible (small share);
one that learned only token frequencies is flat, near the unigram entropy.
Pad positions are never masked: they are trivially predictable and would hide the effect.

``predict(x_t, share) -> (N_masked, V) log-probs`` is the family's x0 prediction at the
masked positions of ``x_t``, in row-major order (see ``absorbing_predictor``).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Callable

import torch

DEFAULT_SHARES = (0.05, 0.2, 0.5, 0.8, 1.0)


@torch.no_grad()
def masked_nll_by_share(predict: Callable[[torch.Tensor, float], torch.Tensor], x0: torch.Tensor, pad_id: int,
                        mask_id: int, shares=DEFAULT_SHARES, generator: torch.Generator | None = None,
                        protect: torch.Tensor | None = None, batch_size: int = 128) -> dict[float, float]:
    """Mean −log p_θ(x0) in nats at masked real positions, for each share masked.

    ``protect`` (L,) bool marks positions never masked (e.g. <bos> at position 0). At least one real
    position per sequence is masked whatever the share, so every sequence contributes.
    """
    real = x0 != pad_id
    if protect is not None:
        real = real & ~protect.to(x0.device)[None]
    out = {}
    for share in shares:
        total, count = 0.0, 0
        for start in range(0, x0.shape[0], batch_size):
            x, r = x0[start:start + batch_size], real[start:start + batch_size]
            u = torch.rand(x.shape, generator=generator, device=x.device)
            hit = (u < share) & r
            # the lowest-u real position is always masked, so no sequence is left out at small shares
            first = torch.where(r, u, torch.full_like(u, 2.0)).argmin(1)
            hit[torch.arange(x.shape[0]), first] |= r.any(1)
            x_t = torch.where(hit, torch.full_like(x, mask_id), x)
            logp = predict(x_t, share)
            nll = -logp.gather(-1, x[hit][:, None]).squeeze(-1)
            total += float(nll.double().sum())
            count += int(hit.sum())
        out[share] = total / max(count, 1)
    return out


def unigram_nll(train_ids: list[list[int]], test_ids: torch.Tensor, pad_id: int, vocab_size: int,
                protect: torch.Tensor | None = None) -> float:
    """−log p(x) under the training split's add-one unigram distribution, averaged over the real
    positions of ``test_ids`` (B, L) that the probe would mask: the no-context baseline in nats.
    The distribution counts the same kind of positions in ``train_ids`` (non-pad, not ``protect``ed)."""
    skip = set(torch.nonzero(protect).flatten().tolist()) if protect is not None else set()
    counts = Counter(t for seq in train_ids for i, t in enumerate(seq) if t != pad_id and i not in skip)
    total = sum(counts.values()) + vocab_size
    real = test_ids != pad_id
    if protect is not None:
        real = real & ~protect[None]
    tokens = test_ids[real].tolist()
    return sum(-math.log((counts.get(t, 0) + 1) / total) for t in tokens) / max(len(tokens), 1)


def absorbing_predictor(model) -> Callable[[torch.Tensor, float], torch.Tensor]:
    """The x0 prediction at masked positions of a masked-diffusion, absorbing SEDD or absorbing D3PM model.

    The model is asked at the time whose masked share matches the probe's share: t = share for MDLM's
    and SEDD's log-linear schedule (the share masked is 1 − α(t), solved on a grid for other schedules),
    the integer step with 1 − ᾱ_t closest to the share for D3PM.
    """
    mask_id = model.vocab.mask_id
    if getattr(getattr(model, "graph", None), "prior", None) != "mask":  # a uniform graph masks no position
        raise ValueError("the masked-NLL probe needs an absorbing graph")
    if hasattr(model, "masked_log_probs"):  # mdlm
        def predict(x_t, share):
            return model.masked_log_probs(x_t, _time_for_share(model.schedule, share, x_t))
    elif hasattr(model, "score_logits"):  # sedd, absorbing: p_θ(x0) ∝ e^z at a masked position
        def predict(x_t, share):
            z = model.score_logits(x_t, _time_for_share(model.schedule, share, x_t))
            return torch.log_softmax(z[x_t == mask_id], -1)
    elif hasattr(model, "x0_log_probs"):  # d3pm, absorbing
        def predict(x_t, share):
            step = int(torch.argmin((1 - model.alphabar[1:] - share).abs())) + 1
            t = torch.full((x_t.shape[0],), step, dtype=torch.long, device=x_t.device)
            return model.x0_log_probs(x_t, t)[x_t == mask_id]
    else:
        raise TypeError(f"{type(model).__name__} has no masked x0 prediction")
    return predict


def _time_for_share(schedule, share: float, x_t: torch.Tensor) -> torch.Tensor:
    grid = torch.linspace(1e-5, 1.0, 10_001, dtype=torch.float64)
    t = grid[torch.argmin((1 - schedule.alpha(grid) - share).abs())]
    return t.expand(x_t.shape[0]).to(x_t.device)
