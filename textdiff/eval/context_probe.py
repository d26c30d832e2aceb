"""Does a discrete diffusion model use its context? Two probes.

*Masked NLL by share* (absorbing graphs): masked NLL as a function of the share masked.

Mask a share of the real (non-pad) positions of held-out canvases, ask the model for
p_θ(x0 | x_t) there, and average −log p_θ(x0) over the masked real positions. A model
that reads its context gets better as more of the sentence is visible (small share);
one that learned only token frequencies is flat, near the unigram entropy.
Pad positions are never masked: they are trivially predictable and would hide the effect.

``predict(x_t, share) -> (N_masked, V) log-probs`` is the family's x0 prediction at the
masked positions of ``x_t``, in row-major order (see ``absorbing_predictor``).

*Partner swap* (any graph, the one probe a uniform graph admits): corrupt a share of the
positions, then replace the uncorrupted context by another sentence's of the same length; a
model that reads its context gets worse at the corrupted positions (``partner_swap``).

Both ask the family's ``x0_log_probs_at_share(x_t, share)``: every discrete family offers it.
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
            hit = corrupted_positions(r, share, generator)
            x_t = torch.where(hit, torch.full_like(x, mask_id), x)
            logp = predict(x_t, share)
            nll = -logp.gather(-1, x[hit][:, None]).squeeze(-1)
            total += float(nll.double().sum())
            count += int(hit.sum())
        out[share] = total / max(count, 1)
    return out


def corrupted_positions(real: torch.Tensor, share: float, generator: torch.Generator | None) -> torch.Tensor:
    """Each ``real`` position with probability ``share``; the lowest-draw real position of each row always, so no
    sequence is left out at small shares."""
    u = torch.rand(real.shape, generator=generator, device=real.device)
    hit = (u < share) & real
    first = torch.where(real, u, torch.full_like(u, 2.0)).argmin(1)
    hit[torch.arange(real.shape[0]), first] |= real.any(1)
    return hit


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
    """The x0 prediction at masked positions of an absorbing model (mdlm, absorbing SEDD or D3PM), asked through
    the family's ``x0_log_probs_at_share`` at the corruption level whose masked share matches the probe's."""
    if getattr(getattr(model, "graph", None), "prior", None) != "mask":  # a uniform graph masks no position
        raise ValueError("the masked-NLL probe needs an absorbing graph")
    mask_id = model.vocab.mask_id

    def predict(x_t, share):
        return model.x0_log_probs_at_share(x_t, share)[x_t == mask_id]

    return predict


# --------------------------------------------------------------------------- partner swap (any graph)


def length_partners(x0: torch.Tensor, pad_id: int) -> torch.Tensor:
    """For each canvas the index of another canvas of the same length (the next one of that length, cyclically);
    a canvas whose length no other canvas shares is its own partner and is left out of the probe."""
    lengths = (x0 != pad_id).sum(1).tolist()
    partner = list(range(len(lengths)))
    groups: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        groups.setdefault(n, []).append(i)
    for members in groups.values():
        for j, i in enumerate(members):
            partner[i] = members[(j + 1) % len(members)]
    return torch.tensor(partner, dtype=torch.long, device=x0.device)


def partner_batches(x0: torch.Tensor, pad_id: int, batch_size: int):
    """(indices, their partners) of the canvases that have one, ``batch_size`` canvases of ``x0`` at a time."""
    partner = length_partners(x0, pad_id)
    usable = partner != torch.arange(len(partner), device=x0.device)
    for start in range(0, x0.shape[0], batch_size):
        idx = torch.arange(start, min(start + batch_size, x0.shape[0]), device=x0.device)[usable[start:start + batch_size]]
        if len(idx):
            yield idx, partner[idx]


def swap_result(own_total: float, swap_total: float, count: int, sentences: int, share: float) -> dict:
    own_nll, swap_nll = own_total / max(count, 1), swap_total / max(count, 1)
    return {"own": own_nll, "swapped": swap_nll, "rise": swap_nll - own_nll, "tokens": count,
            "sentences": sentences, "share": share}


@torch.no_grad()
def partner_swap(predict: Callable[[torch.Tensor, float], torch.Tensor], x0: torch.Tensor, pad_id: int,
                 noise: Callable[[torch.Tensor, torch.Generator | None], torch.Tensor], share: float = 0.5,
                 generator: torch.Generator | None = None, protect: torch.Tensor | None = None,
                 batch_size: int = 128) -> dict:
    """Does the model read its uncorrupted context? −log p̂θ(x0) at corrupted positions, with the context as it is
    and with the context replaced by another sentence's of the same length (the same corrupted positions and noise).

    ``predict(x_t, share) -> (B, L, V)`` log-probs of x0 (``model.x0_log_probs_at_share``); ``noise(x0, g)`` the
    graph's corrupted tokens (uniform draws, or [MASK]). A share ``share`` of each canvas's real positions (not
    ``protect``ed, at least one) is corrupted; the rest is the context. A model that ignores its context scores
    both the same; one that reads it gets worse when the context belongs to another sentence:
    {"own": nats, "swapped": nats, "rise": swapped − own, "tokens": scored positions, "sentences": n}."""
    real = x0 != pad_id
    if protect is not None:
        real = real & ~protect.to(x0.device)[None]
    own_total = swap_total = 0.0
    count = sentences = 0
    for idx, mates in partner_batches(x0, pad_id, batch_size):
        x, r, mate = x0[idx], real[idx], x0[mates]
        hit = corrupted_positions(r, share, generator)
        corrupted = noise(x, generator)
        own = torch.where(hit, corrupted, x)
        swapped = torch.where(hit, corrupted, torch.where(r, mate, x))
        target = x[hit][:, None]
        own_total += float(-predict(own, share)[hit].gather(-1, target).double().sum())
        swap_total += float(-predict(swapped, share)[hit].gather(-1, target).double().sum())
        count += int(hit.sum())
        sentences += len(idx)
    return swap_result(own_total, swap_total, count, sentences, share)


def graph_noise(model) -> Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]:
    """The tokens a discrete model's graph puts at a corrupted position: [MASK], or a uniform draw."""
    if model.graph.prior == "mask":
        return lambda x, g: torch.full_like(x, model.vocab.mask_id)
    return lambda x, g: torch.randint(0, model.vocab.size, x.shape, generator=g, device=x.device)


@torch.no_grad()
def prefix_swap(next_log_probs: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor, pad_id: int,
                share: float = 0.5, batch_size: int = 128) -> dict:
    """The causal (AR) model's partner swap: −log p(x_i | x_<i) over the second part of each sentence (its tokens
    after the first ⌈(1 − share)·n⌉ real tokens, <eos> included), after its own first part and after the first part
    of another sentence of the same length. ``next_log_probs(x) -> (B, L, V)``: log p(x_{i+1} | x_≤i) at each i.
    Same keys as ``partner_swap``."""
    lengths = (x0 != pad_id).sum(1)
    positions = torch.arange(x0.shape[1], device=x0.device)[None]
    own_total = swap_total = 0.0
    count = sentences = 0
    for idx, mates in partner_batches(x0, pad_id, batch_size):
        x, n = x0[idx], lengths[idx]
        context_end = torch.ceil((1 - share) * (n - 1).double()).long().clamp(1)  # <bos> and at least nothing more
        scored = (positions >= context_end[:, None]) & (positions < n[:, None])  # targets x_i, i ≥ context_end
        swapped = torch.where(positions < context_end[:, None], x0[mates], x)
        swapped[:, 0] = x[:, 0]
        target = x[:, 1:][scored[:, 1:]][:, None]
        own_total += float(-next_log_probs(x)[:, :-1][scored[:, 1:]].gather(-1, target).double().sum())
        swap_total += float(-next_log_probs(swapped)[:, :-1][scored[:, 1:]].gather(-1, target).double().sum())
        count += int(scored[:, 1:].sum())
        sentences += len(idx)
    return swap_result(own_total, swap_total, count, sentences, share)


# --------------------------------------------------------------------------- the probe a family offers

PROBE_SHARES = (0.05, 1.0)  # the masked-NLL probe's two ends: 95 % of the sentence visible, none of it


def discrete_probe(model, x0: torch.Tensor, generator: torch.Generator | None = None) -> dict:
    """The context probe of a discrete diffusion model, by its graph: absorbing, the masked NLL at share 0.05
    against 1.0 (``value`` = the drop); uniform, the partner swap at share 0.5 (``value`` = the rise). <bos> is
    never corrupted (it is not in training either). Every discrete family's ``context_probe``."""
    protect = torch.zeros(x0.shape[1], dtype=torch.bool)
    protect[0] = True
    if model.graph.prior == "mask":
        shares = masked_nll_by_share(absorbing_predictor(model), x0, model.vocab.pad_id, model.vocab.mask_id,
                                     shares=PROBE_SHARES, generator=generator, protect=protect)
        return {"probe": "masked_nll_by_share", "graph": "absorbing", "value": shares[1.0] - shares[0.05],
                "masked_nll_by_share": {str(k): v for k, v in shares.items()}}
    swap = partner_swap(model.x0_log_probs_at_share, x0, model.vocab.pad_id, graph_noise(model),
                        generator=generator, protect=protect)
    return {"probe": "partner_swap", "graph": "uniform", "value": swap["rise"], **swap}
