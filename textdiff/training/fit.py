"""Training a fixed-canvas model on texts: every diffusion family's ``fit``."""

from __future__ import annotations

from typing import Callable

import torch

from textdiff.data.batching import training_batches
from textdiff.data.vocab import Vocab
from textdiff.training.flops import canvas_step_flops
from textdiff.training.loop import train


def fit_on_canvas(build: Callable, params, tokenizer, train_texts: list[str], run):
    """Build ``build(params, vocab)`` under ``run.seed`` and train its ``loss`` on
    ``<bos> text <eos> <pad>…`` canvases of ``params.model.seq_len``; return (model, TrainResult).
    ``run``: a ``textdiff.families.contract.RunContext`` (its FLOP budget sets the steps)."""
    batch_fn = training_batches(tokenizer, train_texts, params.model.seq_len, params.train.batch_size, run.seed,
                                fixed_length=True)
    torch.manual_seed(run.seed)
    model = build(params, Vocab.from_tokenizer(tokenizer))
    result = train(model, lambda m, b: m.loss(b), batch_fn, params.train, **run.loop_options(),
                   flops_fn=lambda b: canvas_step_flops(model, b))
    return model, result


def canvas_fit(build: Callable) -> Callable:
    """The ``fit`` call of a fixed-canvas family: ``fit = canvas_fit(build)`` in its module."""
    def fit(params, tokenizer, train_texts: list[str], run):
        """Train on the project tokenizer's canvases (``run.space`` is the token space: nothing to read)."""
        return fit_on_canvas(build, params, tokenizer, train_texts, run)

    return fit
