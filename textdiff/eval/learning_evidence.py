"""The evidence that a row with a token likelihood has learned, measured on a trained (or training) model: its
held-out nats per token beside the positional unigram's on the same footing, and its family's context probe.

The likelihood stage measures it once on the whole test split; the training stage measures it on a slice of the
test split at a few points of the budget (``curve_probe``), which gives the learning curves of the report."""

from __future__ import annotations

import math
from typing import Callable

import torch

from textdiff.data.batching import encode_sequences, pad_batch
from textdiff.eval.context_blind import PositionalUnigram, fit_positional_unigram

CURVE_SENTENCES = 256  # held-out sentences a learning-curve point reads (the first of the test split)
CURVE_DRAWS = 2  # Monte-Carlo draws of t per sentence for a curve point's bound


def canvases(tokenizer, texts: list[str], seq_len: int) -> torch.Tensor:
    """``<bos> text <eos> <pad>…`` canvases of ``seq_len`` (truncated as in training)."""
    return pad_batch(encode_sequences(tokenizer, texts, seq_len), tokenizer.pad_token_id, seq_len)


def context_blind_bar(tokenizer, train_texts: list[str], valid_texts: list[str], seq_len: int,
                      footing: str) -> PositionalUnigram:
    """The positional unigram of the training split on ``footing``, smoothed on the validation split."""
    return fit_positional_unigram(canvases(tokenizer, train_texts, seq_len), canvases(tokenizer, valid_texts, seq_len),
                                  len(tokenizer), tokenizer.pad_token_id, footing)


def context_evidence(family, model, tokenizer, texts: list[str], bar: PositionalUnigram, seq_len: int, *,
                     heldout_nats: float, seed: int, device: torch.device) -> dict:
    """The bar's nats per token on ``texts``, the row's margin below it (``heldout_nats`` is the row's own figure
    on the same texts) and the family's context probe on them."""
    held_out = canvases(tokenizer, texts, seq_len)
    generator = torch.Generator(device=device).manual_seed(seed)
    bar_nats = bar.nats_per_token(held_out, tokenizer.pad_token_id)
    return {"context_blind_nats": bar_nats, "context_blind_footing": bar.footing,
            "context_blind_margin": bar_nats - heldout_nats,
            "context_probe": family.context_probe(model, held_out.to(device), generator)}


def curve_probe(family, tokenizer, texts: list[str], bar: PositionalUnigram, seq_len: int, *, seed: int,
                device: torch.device) -> Callable[[torch.nn.Module], dict]:
    """model -> {"heldout_nats", "context_blind_margin", "probe", "probe_value", "graph"} on the first
    ``CURVE_SENTENCES`` of ``texts``: one point of a row's learning curve (textdiff.training.loop)."""
    texts = texts[:CURVE_SENTENCES]

    def probe(model) -> dict:
        like = family.likelihood(model, tokenizer, texts, device=device, draws=CURVE_DRAWS, seed=seed)
        nats = math.log(like["heldout_ppl"])
        evidence = context_evidence(family, model, tokenizer, texts, bar, seq_len, heldout_nats=nats, seed=seed,
                                    device=device)
        return {"heldout_nats": nats, "context_blind_margin": evidence["context_blind_margin"],
                "probe": evidence["context_probe"]["probe"], "probe_value": evidence["context_probe"]["value"],
                "graph": evidence["context_probe"]["graph"]}

    return probe
