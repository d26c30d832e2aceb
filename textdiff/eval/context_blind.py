"""What a model that ignores context reaches: the positional unigram, the bar every row must clear.

A context-blind model knows the position of a token and nothing else. The best such model is a table
p_i(w) of per-position token frequencies; with 11k training sentences and a 4,096-token vocabulary the
raw table over-fits, so each position's counts are smoothed toward the global distribution of real
tokens with a strength k_i chosen on the validation split (a small k at the first positions, where
sentences start alike, a large one further in). The bar is therefore the *best* context-blind model
we can fit, not a weak straw man.

Two footings, matching the two kinds of held-out likelihood a row reports:

- ``canvas``: the diffusion rows' bounds pay for every canvas position after <bos>, the padding
  included (the text fixes it), divided by the text's tokens after <bos>. The positional unigram then
  also predicts <pad>: p_i(<pad>) is the share of training sentences that ended before position i.
- ``tokens``: the AR row's exact likelihood pays for the text's tokens after <bos> (its <eos> included)
  and no padding; the positional model predicts real tokens only.

``noise_floor_texts`` draws text from the canvas table (each position independently, cut at the first
<eos> or <pad>): the noise-floor row that every row's samples must be distinguishable from.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

SMOOTHING_GRID = (1, 3, 10, 30, 100, 300, 1000, 3000, 10000, 30000)  # candidate k per position
FOOTINGS = ("canvas", "tokens")


@dataclass(frozen=True)
class PositionalUnigram:
    """log p_i(w), (L, V) in float64, for one footing; position 0 is <bos> and is never scored."""

    log_probs: torch.Tensor
    footing: str
    smoothing: tuple[int, ...]  # k_i per position (the validation split's choice)

    def sequence_nll(self, canvases: torch.Tensor, pad_id: int) -> torch.Tensor:
        """−log p of each (B, L) canvas at the positions the footing pays for, (B,) in nats."""
        return _position_nll(self.log_probs, canvases, pad_id, self.footing).sum(1)

    def nats_per_token(self, canvases: torch.Tensor, pad_id: int) -> float:
        """Σ NLL / Σ tokens after <bos>: the denominator of every row's held-out likelihood."""
        tokens = int(((canvases != pad_id).sum(1) - 1).clamp_min(0).sum())
        return float(self.sequence_nll(canvases, pad_id).sum()) / max(tokens, 1)


def fit_positional_unigram(train: torch.Tensor, valid: torch.Tensor, vocab_size: int, pad_id: int,
                           footing: str = "canvas", grid=SMOOTHING_GRID) -> PositionalUnigram:
    """The table from the training canvases (B, L), each position's smoothing chosen on ``valid``."""
    if footing not in FOOTINGS:
        raise ValueError(f"footing must be one of {FOOTINGS}, got {footing!r}")
    counts = _position_counts(train, vocab_size)
    candidates = [_table(counts, k, pad_id, footing) for k in grid]
    cost = torch.stack([_position_nll(c, valid, pad_id, footing).sum(0) for c in candidates])  # (K, L)
    choice = cost.argmin(0)
    table = torch.stack([candidates[int(k)][i] for i, k in enumerate(choice)])
    return PositionalUnigram(table, footing, tuple(grid[int(k)] for k in choice))


def _position_counts(canvases: torch.Tensor, vocab_size: int) -> torch.Tensor:
    L = canvases.shape[1]
    counts = torch.zeros(L, vocab_size, dtype=torch.float64)
    counts.scatter_add_(1, canvases.T.contiguous(), torch.ones(L, canvases.shape[0], dtype=torch.float64))
    return counts


def _table(counts: torch.Tensor, k: float, pad_id: int, footing: str) -> torch.Tensor:
    """log p_i(w): real tokens' counts at position i smoothed toward the global real-token distribution of the
    scored positions 1.. (add-½) with strength k; on the canvas footing times the share of sentences still
    running at i."""
    real = counts.clone()
    real[:, pad_id] = 0
    glob = real[1:].sum(0) + 0.5
    glob[pad_id] = 0
    glob = glob / glob.sum()
    n = real.sum(1, keepdim=True)
    tokens = (real + k * glob) / (n + k)
    if footing == "tokens":
        return tokens.log()
    pad = (counts[:, pad_id] + 0.5) / (counts.sum(1) + 1.0)
    probs = tokens * (1 - pad[:, None])
    probs[:, pad_id] = pad
    return probs.log()


def _position_nll(log_probs: torch.Tensor, canvases: torch.Tensor, pad_id: int, footing: str) -> torch.Tensor:
    """(B, L) −log p_i(x_i) at the scored positions, zero elsewhere (position 0 always, pads on ``tokens``)."""
    nll = -log_probs.gather(1, canvases.T.contiguous()).T
    scored = torch.ones_like(canvases, dtype=torch.bool) if footing == "canvas" else canvases != pad_id
    scored[:, 0] = False
    return torch.where(scored, nll, torch.zeros_like(nll))


def noise_floor_canvases(model: PositionalUnigram, num: int, bos_id: int,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """(num, L) canvases drawn position by position from the canvas table (float64 inverse CDF), <bos> first."""
    if model.footing != "canvas":
        raise ValueError("the noise floor draws from the canvas footing's table (it knows where text stops)")
    probs = model.log_probs[1:].exp()  # (L-1, V)
    u = torch.rand(num, probs.shape[0], generator=generator, dtype=torch.float64)
    cdf = probs.cumsum(-1)
    cdf = cdf / cdf[:, -1:]
    draws = torch.searchsorted(cdf.expand(num, -1, -1).contiguous(), u[..., None]).squeeze(-1)
    draws = draws.clamp_max(probs.shape[1] - 1)
    return torch.cat([torch.full((num, 1), bos_id, dtype=torch.long), draws], 1)
