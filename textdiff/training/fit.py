"""Training a fixed-canvas model on texts: every diffusion family's ``fit``."""

from __future__ import annotations

from typing import Callable

import torch

from textdiff.data.batching import training_batches
from textdiff.data.vocab import Vocab
from textdiff.training.flops import canvas_step_flops
from textdiff.training.loop import train


def fit_on_canvas(build: Callable, params, tokenizer, train_texts: list[str], *, seed: int, device: torch.device,
                  checkpoint_dir, fingerprint: str, log=None, progress: bool = True, stop_after: int | None = None,
                  budget_flops: float | None = None):
    """Build ``build(params, vocab)`` under ``seed`` and train its ``loss`` on
    ``<bos> text <eos> <pad>…`` canvases of ``params.model.seq_len``; return (model, TrainResult).
    ``budget_flops``: the row's FLOP budget (sets the steps; textdiff.training.flops)."""
    batch_fn = training_batches(tokenizer, train_texts, params.model.seq_len, params.train.batch_size, seed,
                                fixed_length=True)
    torch.manual_seed(seed)
    model = build(params, Vocab.from_tokenizer(tokenizer))
    result = train(model, lambda m, b: m.loss(b), batch_fn, params.train, checkpoint_dir=checkpoint_dir,
                   fingerprint=fingerprint, device=device, log=log, progress=progress, stop_after=stop_after,
                   budget_flops=budget_flops, flops_fn=lambda b: canvas_step_flops(model, b))
    return model, result


def canvas_fit(build: Callable) -> Callable:
    """The ``fit`` call of a fixed-canvas family: ``fit = canvas_fit(build)`` in its module."""
    def fit(params, tokenizer, train_texts: list[str], space_dir=None, **kwargs):
        """``space_dir`` is unused: these families work on the project tokenizer's ids."""
        return fit_on_canvas(build, params, tokenizer, train_texts, **kwargs)

    return fit
