"""FLOP accounting: what training a row costs, what a sample costs, and the budget that sets steps.

The count (PaLM, Chowdhery et al. 2022, appendix B): a weight matrix of N entries applied at one
position costs 2N FLOPs forward; attention adds 4·d per layer per (query, key) pair (the scores and
the weighted sum), every query counted against every key, also under a causal mask. Training costs
3 × forward (the backward pass counted as twice the forward, also where an input needs no gradient).
Only matmuls count: norms, softmaxes, losses, the optimiser and per-sequence layers (the time
embedding, adaLN modulation) are left out, and so is the frozen MiniLM, which is reported beside the
budget and never charged to it.

Each family keeps its ``flops_per_token(seq_len, training)``: one pass per canvas position, the head
included. This module adds what a training step runs around it (the expected no-grad estimate pass of
self-conditioning, the padded batch actually fed, the head only where a loss needs it), the components
that are not families (the autoencoders' compressors and decoders, the feature decoders, MiniLM), the
sampling cost, and ``budgeted``: the one place where a FLOP budget becomes a number of steps.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import torch

TRAIN = 3  # forward + backward, in forwards
MINILM = {"layers": 6, "hidden": 384, "intermediate": 1536}  # all-MiniLM-L6-v2 (DESIGN §4)
WITHIN_BUDGET = 0.10  # a row whose training FLOPs are within ±10 % of the budget is compute-matched
BUDGET_ESTIMATE_BATCHES = 128  # batches averaged to estimate a component's FLOPs per step


# --------------------------------------------------------------------------- the shared backbone


def head_parameters(net) -> int:
    """Entries of a ``Transformer``'s output head: its projection, or the tied token embedding."""
    return net.out_proj.weight.numel() if net.out_proj is not None else net.tok_emb.weight.numel()


def memory_parameters(net) -> int:
    """Cross-attention key/value weights: applied to the memory vectors, not to the sequence's positions."""
    return sum(b.cross_attn.kv.weight.numel() for b in net.blocks if b.cross_attn is not None)


def body_forward(net, keys: int, memory_len: int = 0) -> float:
    """Forward FLOPs at one position without the head: every per-position matmul (``matmul_parameters``
    less the head and the memory's key/value weights), self-attention over ``keys`` positions and, with
    cross-attention, attention over ``memory_len`` memory vectors."""
    cfg = net.cfg
    weights = net.matmul_parameters() - head_parameters(net) - memory_parameters(net)
    attended = keys + (memory_len if cfg.cross_dim else 0)
    return 2 * weights + 4 * cfg.n_layers * cfg.d_model * attended


def head_forward(net) -> float:
    return 2 * head_parameters(net)


def sequence_forward(net, positions: int, *, head_positions: float | None = None, memory_len: int = 0) -> float:
    """One sequence of ``positions`` through a ``Transformer``: the head at ``head_positions`` of them (all
    by default), cross-attention keys and values computed once from ``memory_len`` vectors.
    Without cross-attention and with the head everywhere it is ``positions × net.flops_per_token(positions,
    training=False)``."""
    head_positions = positions if head_positions is None else head_positions
    return (positions * body_forward(net, positions, memory_len) + head_positions * head_forward(net)
            + 2 * memory_parameters(net) * memory_len)


# --------------------------------------------------------------------------- a training step


def self_condition_probability(model) -> float:
    """p of the self-conditioned training pass; 0 for a model without the self-conditioning input."""
    denoiser = getattr(model, "denoiser", None)
    if denoiser is None or denoiser.self_cond_proj is None:
        return 0.0
    return float(model.config.diffusion.self_condition)


def train_flops_per_token(model, seq_len: int) -> float:
    """Expected training FLOPs per canvas position of one step: the trained pass forward + backward (the
    family's ``flops_per_token``) and, with probability p, self-conditioning's no-grad estimate pass
    (forward only: ``self_condition_flops_per_token``)."""
    p = self_condition_probability(model)
    extra = p * model.self_condition_flops_per_token(seq_len) if p else 0.0
    return model.flops_per_token(seq_len, training=True) + extra


def canvas_step_flops(model, batch) -> float:
    """A fixed-canvas step: every position of the (B, L, …) batch goes through the model."""
    B, L = batch.shape[0], batch.shape[1]
    return B * L * train_flops_per_token(model, L)


def causal_lm_step_flops(net, tokens: torch.Tensor, pad_id: int, memory_len: int = 0) -> float:
    """A next-token step of a causal ``Transformer`` (the AR row, an autoencoder's decoder): the inputs
    ``tokens[:, :-1]`` as padded (to the batch's longest), the head only at the non-pad targets."""
    B, T = tokens.shape[0], tokens.shape[1] - 1
    targets = int((tokens[:, 1:] != pad_id).sum())
    per_sequence = T * body_forward(net, T, memory_len) + 2 * memory_parameters(net) * memory_len
    return TRAIN * (B * per_sequence + targets * head_forward(net))


def compressor_forward(compressor, input_len: int, num_latents: int) -> float:
    """One sentence through an autoencoder's compressor (textdiff.spaces.autoencoders.compressors): the
    input projection at each of ``input_len`` (padded) MiniLM positions; per Perceiver layer the
    cross-attention's queries and output at the latents, its keys and values at the inputs, the attention
    between them, the optional self-attention over the latents and the MLP at the latents; the output
    heads (mean and log-variance, or LD4LG's projection) at the latents."""
    reader = next(m for m in compressor.modules() if hasattr(m, "queries") and hasattr(m, "layers"))
    d, N, M = reader.queries.shape[1], input_len, num_latents
    total = 2 * reader.in_proj.weight.numel() * N
    for layer in reader.layers:
        total += 2 * (2 * d * d) * M + 2 * (2 * d * d) * N + 4 * d * N * M  # q, out | k, v | attention
        if layer.self_attn is not None:
            total += 2 * (4 * d * d) * M + 4 * d * M * M
        total += 2 * sum(m.weight.numel() for m in layer.mlp if isinstance(m, torch.nn.Linear)) * M
    inside = {id(p) for p in reader.parameters()}
    heads = sum(m.weight.numel() for m in compressor.modules()
                if isinstance(m, torch.nn.Linear) and id(m.weight) not in inside)
    return total + 2 * heads * M


def autoencoder_step_flops(model, batch) -> float:
    """A sentence-autoencoder step: the compressor over the batch's padded MiniLM encodings, then the causal
    decoder reading the latent (MiniLM itself never runs in training: its encodings are cached)."""
    B, N = batch.features.shape[0], batch.features.shape[1]
    M = model.params.num_latents
    return (TRAIN * B * compressor_forward(model.compressor, N, M)
            + causal_lm_step_flops(model.decoder, batch.tokens, model.vocab.pad_id, memory_len=M))


def mean_masked_fraction(schedule, points: int = 1000) -> float:
    """E_t[1 − α(t)], t uniform on (0, 1]: the expected fraction of a masked-diffusion canvas that is masked
    (where MDLM's head runs) in training; 1/2 for the log-linear schedule."""
    t = (torch.arange(points, dtype=torch.float64) + 0.5) / points
    return float((1 - schedule.alpha(t)).mean())


def masked_head_flops_per_token(net, schedule, seq_len: int, training: bool = True) -> float:
    """FLOPs per canvas position of an absorbing-graph denoiser whose output head runs only at masked positions
    (MDLM, SEDD-absorb): the body everywhere, the head at the expected masked fraction of the canvas."""
    forward = body_forward(net, seq_len) + mean_masked_fraction(schedule) * head_forward(net)
    return TRAIN * forward if training else forward


# --------------------------------------------------------------------------- the budget


def effective_share(cfg) -> float:
    return 1.0 if cfg.budget_share is None else float(cfg.budget_share)


def budgeted(cfg, budget_flops: float | None, flops_per_step: float):
    """A component's train params under its row's budget: steps = floor(share × budget / FLOPs per step)
    and warmup = min(warmup_steps, steps // 10); warmup steps stabilise Adam's first updates
    and need not grow with the run, but a short budgeted run still spends nine tenths past its peak.
    Without a budget the params are returned unchanged. A budget that buys no step is an InputError that
    names the key, raised before the first step."""
    if budget_flops is None:
        return cfg
    if not flops_per_step > 0:
        raise ValueError(f"a component's FLOPs per step must be positive (got {flops_per_step})")
    steps = math.floor(effective_share(cfg) * budget_flops / flops_per_step)
    if steps < 1:
        from textdiff.errors import InputError

        raise InputError(f"budget.train_flops ({budget_flops:.3g}) × this component's budget_share "
                         f"({effective_share(cfg):g}) buys no training step: one step costs {flops_per_step:.3g} "
                         f"FLOPs; raise budget.train_flops (or the share), or set it to null to train train.steps")
    return cfg.model_copy(update={"steps": steps, "warmup_steps": min(cfg.warmup_steps, steps // 10)})


def mean_step_flops(batch_fn: Callable[[int], object], flops_fn: Callable[[object], float],
                    batches: int = BUDGET_ESTIMATE_BATCHES) -> float:
    """Mean FLOPs of the first ``batches`` training steps' batches (``batch_fn`` is deterministic in the
    step, so these are the batches training will see; padded batches differ in length)."""
    return sum(flops_fn(batch_fn(step)) for step in range(batches)) / batches


def train_record(result, cfg, budget_flops: float | None) -> dict:
    """The compute fields of a training stage's metrics (``result``: a TrainResult, ``cfg``: the written
    train params): FLOPs trained, the budget and share, derived and done steps, and whether
    ``max_minutes`` cut the run short."""
    return {"train_flops": result.flops, "budget_flops": budget_flops,
            "budget_share": effective_share(cfg) if budget_flops is not None else cfg.budget_share,
            "planned_steps": result.planned_steps, "warmup_steps": result.warmup_steps,
            "flops_per_step": result.flops / result.steps if result.steps else None,
            "cut_short_by_time": result.stopped_by == "time"}


def row_compute(metrics_dir: str | Path, row: str) -> dict:
    """A row's training compute, summed over its components' stage metrics (train, autoencoder, decoder:
    their ``train_flops``), with the frozen-encoder FLOPs of its stages (autoencoder, space, decoder)
    beside it, and whether the total is within ±10 % of the budget (None without a budget)."""
    from textdiff.io import read_json

    metrics_dir = Path(metrics_dir)

    def stage(name: str) -> dict:
        path = metrics_dir / name / f"{row}.json"
        return read_json(path) if path.exists() else {}

    components, shares, budget = {}, {}, None
    for name in ("train", "autoencoder", "decoder"):
        m = stage(name)
        if m.get("train_flops") is not None:
            components[name] = m["train_flops"]
            shares[name] = m.get("budget_share")
            budget = budget if budget is not None else m.get("budget_flops")
    total = float(sum(components.values()))
    frozen = float(sum(stage(name).get("frozen_encoder_flops") or 0.0 for name in ("autoencoder", "space", "decoder")))
    return {"row": row, "train_flops": total, "components": components, "shares": shares,
            "frozen_encoder_flops": frozen, "budget_flops": budget,
            "within_budget": abs(total / budget - 1) <= WITHIN_BUDGET if budget else None}


# --------------------------------------------------------------------------- the frozen encoder


def minilm_flops_per_token(width: int) -> float:
    """Forward FLOPs of MiniLM at one position of a batch padded to ``width``: 2 × its per-token weights
    (attention 4·h², FFN 2·h·f per layer) plus attention over ``width`` keys."""
    L, h, f = MINILM["layers"], MINILM["hidden"], MINILM["intermediate"]
    return 2 * L * (4 * h * h + 2 * h * f) + 4 * L * h * width


def minilm_flops(lengths: list[int], batch_size: int, kind: str = "encodings") -> float:
    """MiniLM over sentences of ``lengths`` WordPiece tokens, batched as ``textdiff.spaces.minilm.features_of``
    batches them (sorted by length, each batch padded to its longest). ``embeddings`` are a table lookup: 0."""
    if kind == "embeddings":
        return 0.0
    ordered, total = sorted(lengths), 0.0
    for start in range(0, len(ordered), batch_size):
        chunk = ordered[start:start + batch_size]
        width = max(chunk)
        total += len(chunk) * width * minilm_flops_per_token(width)
    return total


# --------------------------------------------------------------------------- sampling


def denoising_flops(model, seq_len: int, nfe: float) -> float:
    """``nfe`` forward passes of a fixed-canvas model over its ``seq_len`` positions (one sample)."""
    return nfe * seq_len * model.flops_per_token(seq_len, training=False)


def generation_flops(net, calls: int, *, memory_len: int = 0, use_cache: bool = True) -> float:
    """One sequence written left to right from <bos> in ``calls`` calls of a causal ``Transformer``, one new
    token each: with the KV cache call k runs one position against k + 1 keys, without it the whole prefix
    of k + 1 positions; the head runs once per call and cross-attention keys and values are recomputed on
    every call."""
    total = 0.0
    for k in range(calls):
        positions = 1 if use_cache else k + 1
        total += (positions * body_forward(net, k + 1, memory_len) + head_forward(net)
                  + 2 * memory_parameters(net) * memory_len)
    return total


def generation_cost(net, batches: list[tuple[int, int]], *, memory_len: int = 0, use_cache: bool = True,
                    rows_per_sample: int = 1) -> tuple[float, float]:
    """(network calls, FLOPs) per sample from each generated batch's (samples, calls): every sample of a batch
    goes through all of its calls (finished rows keep running until the batch is done); ``rows_per_sample``
    rows per sample (beams)."""
    n = sum(rows for rows, _ in batches)
    if not n:
        return 0.0, 0.0
    nfe = sum(rows * calls for rows, calls in batches) / n
    flops = sum(rows * generation_flops(net, calls, memory_len=memory_len, use_cache=use_cache)
                for rows, calls in batches) * rows_per_sample / n
    return nfe, flops
