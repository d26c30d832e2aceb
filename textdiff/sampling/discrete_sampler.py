"""The reverse loop shared by the discrete samplers (D3PM ancestral, SEDD Euler and Tweedie).

A family supplies ``step_probs(x_t, t, s)``: the (B, L, V) probabilities of
x_s given x_t. The loop starts from the prior on a ``<bos>``-led canvas, holds
known tokens fixed (``<bos>`` and any infill), and draws each step with
``jump``. Seeded by the generator alone.
"""

from __future__ import annotations

from typing import Callable

import torch

from textdiff.data.vocab import Vocab
from textdiff.sampling.categorical import sample_from_probs


def initial_canvas(num: int, seq_len: int, vocab: Vocab, prior: str, generator: torch.Generator, device,
                   infill: tuple[torch.Tensor, torch.Tensor] | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draw x_T from the prior (``mask``: all [MASK]; ``uniform``: uniform tokens) and fix known tokens.

    ``infill=(known_mask, tokens)`` (num, L) adds known positions to position 0's
    ``<bos>``. Returns (x, known, values): the canvas and what stays fixed.
    """
    if prior == "mask":
        x = torch.full((num, seq_len), vocab.mask_id, dtype=torch.long, device=device)
    elif prior == "uniform":
        x = torch.randint(0, vocab.size, (num, seq_len), generator=generator, device=device)
    else:
        raise ValueError(f"unknown prior {prior!r}; known: ['mask', 'uniform']")
    known = torch.zeros_like(x, dtype=torch.bool)
    known[:, 0] = True
    values = torch.full_like(x, vocab.bos_id)
    if infill is not None:
        known, values = known | infill[0].to(device), torch.where(infill[0].to(device), infill[1].to(device), values)
    return torch.where(known, values, x), known, values


def jump(probs: torch.Tensor, x_t: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Draw x_s ~ probs (B, L, V): stay at x_t with probability probs[x_t], else draw among the others.

    ``probs`` need not be normalised. Equal in distribution to one categorical
    draw per position, but the draw over V (inverse CDF in float64) runs only at
    the positions that move, which in most steps are few.
    """
    total = probs.sum(-1, dtype=torch.float64)
    stay = probs.gather(-1, x_t[..., None]).squeeze(-1).double() / total
    u = torch.rand(x_t.shape, generator=generator, device=x_t.device, dtype=torch.float64)
    moves = (u >= stay) & (stay < 1)
    out = x_t.clone()
    if moves.any():
        out[moves] = sample_from_probs(probs[moves].scatter(-1, x_t[moves][:, None], 0.0), generator)
    return out


@torch.no_grad()
def reverse_sample(step_probs: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
                   x: torch.Tensor, known: torch.Tensor, values: torch.Tensor, times: torch.Tensor,
                   generator: torch.Generator) -> torch.Tensor:
    """Run x through ``times`` (decreasing, ending at 0): one ``step_probs`` call (one NFE) per step."""
    for t, s in zip(times[:-1], times[1:]):
        x = torch.where(known, values, jump(step_probs(x, t, s), x, generator))
    return x
