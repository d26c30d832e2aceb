"""The shared training loop.

A family supplies ``loss_fn(model, batch) -> scalar`` and ``batch_fn(step) ->
tensor``; the loop owns AdamW, warmup + cosine, gradient clipping, the step and
wall-clock budgets, checkpoints and resume, the EMA of the weights (the
returned model holds it; ``raw_weights`` the last raw ones), progress and logging. Batches
depend only on the step, so a resumed run continues exactly where a killed run
stopped. With ``flops_fn(batch) -> FLOPs`` it counts the training FLOPs of the
batches it runs, and with a FLOP budget it derives the steps from them
(textdiff.training.flops.budgeted).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from textdiff.params.shared import TrainParams
from textdiff.device import autocast
from textdiff.errors import InputError
from textdiff.progress import Progress
from textdiff.training import distributed
from textdiff.training.checkpoint import CheckpointLock, load_checkpoint, save_checkpoint
from textdiff.training.ema import EMA
from textdiff.training.flops import budgeted, mean_step_flops
from textdiff.training.peak import resolve_precision
from textdiff.training.lr_schedule import lr_at


@dataclass
class TrainResult:
    steps: int
    stopped_by: str
    wall_s: float
    tokens: int
    final_loss: float
    resumed_from: int
    losses: list[tuple[int, float, float]] = field(default_factory=list)  # (step, loss, lr)
    flops: float = 0.0  # training FLOPs of the steps done (0 without a flops_fn)
    planned_steps: int = 0  # the steps it was to run: cfg.steps, or the budget's derived count
    warmup_steps: int = 0
    raw_weights: dict | None = None  # with cfg.ema_decay > 0 the model holds the EMA weights; these are the raw ones
    curve: list[dict] = field(default_factory=list)  # {"step", "flops", figures…} at the curve_at fractions
    precision: str = "fp32"  # what the forward ran in (cfg.precision resolved: textdiff.training.peak)
    precision_reason: str = ""

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s if self.wall_s else float("nan")


def measure_curve_point(model: torch.nn.Module, probe: Callable, device: torch.device) -> dict:
    """``probe(model)`` in eval mode without gradients, on forked random numbers (training's stream is untouched)."""
    model.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            return dict(probe(model))
    finally:
        model.train()


def make_optimizer(model: torch.nn.Module, cfg: TrainParams) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only (not on biases, norms or gains)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.98), eps=1e-8)


def train(model: torch.nn.Module, loss_fn: Callable, batch_fn: Callable[[int], torch.Tensor], cfg: TrainParams,
          *, checkpoint_dir: Path | None, fingerprint: str, device: torch.device,
          log: Callable[[dict, int], None] | None = None, progress: bool = True,
          stop_after: int | None = None, flops_fn: Callable[[object], float] | None = None,
          budget_flops: float | None = None, curve_probe: Callable | None = None,
          curve_at: tuple[float, ...] = ()) -> TrainResult:
    """Train to ``cfg.steps`` or ``cfg.max_minutes``, whichever comes first.

    ``flops_fn(batch)``: the training FLOPs of one step on that batch, summed into
    the result. ``budget_flops``: the row's FLOP budget; the steps become
    floor(cfg.budget_share × budget_flops / mean FLOPs per step) (needs
    ``flops_fn``), and the derived steps join the checkpoint fingerprint.
    ``stop_after`` ends the run early at that step without marking it finished
    (for tests of resume; a killed process behaves the same). ``curve_probe(model) -> dict`` is measured
    (eval mode, no grad, on its own random numbers: training draws the same with or without it) after the
    step nearest each fraction of ``curve_at``: the learning curve in ``TrainResult.curve``. The run holds a lock on
    ``checkpoint_dir``: a second run of it fails at once and says who holds it.
    """
    world = distributed.current_world()
    if checkpoint_dir is None or not world.is_main:  # rank 0 holds the lock and writes the checkpoints
        return _train(model, loss_fn, batch_fn, cfg, checkpoint_dir, fingerprint, device, log, progress, stop_after,
                      flops_fn, budget_flops, curve_probe, curve_at)
    with CheckpointLock(checkpoint_dir):
        return _train(model, loss_fn, batch_fn, cfg, checkpoint_dir, fingerprint, device, log, progress, stop_after,
                      flops_fn, budget_flops, curve_probe, curve_at)


def _train(model, loss_fn, batch_fn, cfg, checkpoint_dir, fingerprint, device, log, progress, stop_after, flops_fn,
           budget_flops, curve_probe=None, curve_at=()) -> TrainResult:
    if budget_flops is not None:
        if flops_fn is None:
            raise ValueError("a FLOP budget needs flops_fn to count the FLOPs of a step")
        cfg = budgeted(cfg, budget_flops, mean_step_flops(batch_fn, flops_fn))
        fingerprint = f"{fingerprint}:steps={cfg.steps}:warmup={cfg.warmup_steps}"
    world = distributed.current_world()
    device = distributed.rank_device(device, world)
    precision, precision_reason = resolve_precision(device, cfg.precision)
    model.to(device).train()
    step_loss = distributed.wrap(model, loss_fn, world, device)
    run_seed = torch.initial_seed()  # the family's seed: the ranks' per-step seeds derive from it
    optimizer = make_optimizer(model, cfg)
    ema = EMA(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
    state = (load_checkpoint(checkpoint_dir, model, optimizer, fingerprint, ema=ema) if checkpoint_dir else None) or {}
    step = start = state.get("step", 0)
    elapsed_before = state.get("wall_s", 0.0)
    tokens = state.get("tokens", 0)
    flops = state.get("flops", 0.0)
    losses = [tuple(x) for x in state.get("losses", [])]
    curve = list(state.get("curve", []))
    curve_steps = {max(1, round(f * cfg.steps)) for f in curve_at} if curve_probe is not None else set()
    budget_s = cfg.max_minutes * 60
    t0 = time.perf_counter()
    stopped_by = "steps"
    bar = Progress(cfg.steps, "train", enabled=progress and world.is_main, unit="steps", initial=step)
    tokens_at_start = tokens
    running = float("nan")
    while step < cfg.steps:
        if distributed.agree(elapsed_before + time.perf_counter() - t0 > budget_s, world):
            stopped_by = "time"
            break
        if stop_after is not None and step >= stop_after:
            stopped_by = "interrupted"
            break
        lr = lr_at(step, cfg.lr, cfg.warmup_steps, cfg.steps, cfg.min_lr_ratio)
        for group in optimizer.param_groups:
            group["lr"] = lr
        distributed.reseed(step, world, run_seed)
        batch = batch_fn(step)
        if flops_fn is not None:
            flops += flops_fn(batch)
        tokens += batch.shape[0] * batch.shape[1]
        local = distributed.shard(batch, world).to(device)
        with autocast(device, precision):
            loss = step_loss(local)
        value = distributed.mean(loss.detach(), world)
        if not math.isfinite(value):
            raise FloatingPointError(f"training loss became {value} at step {step}; lower the lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        if ema is not None:
            ema.update(model, step)
        step += 1
        running = value if math.isnan(running) else 0.9 * running + 0.1 * value
        if step % cfg.log_every == 0 or step == cfg.steps:
            losses.append((step, value, lr))
            if log:
                log({"train/loss": value, "train/lr": lr}, step)
        if step in curve_steps and world.is_main:
            curve.append({"step": step, "flops": flops, **measure_curve_point(model, curve_probe, device)})
        bar.update(1, loss=running, tokens_per_s=(tokens - tokens_at_start) / max(time.perf_counter() - t0, 1e-9))
        if checkpoint_dir and world.is_main and step % cfg.checkpoint_every == 0 and step < cfg.steps:
            wall = elapsed_before + time.perf_counter() - t0
            save_checkpoint(checkpoint_dir, step, model, optimizer,
                            {"wall_s": wall, "tokens": tokens, "flops": flops, "losses": losses, "curve": curve},
                            fingerprint, ema=ema)
    bar.close()
    if step == 0 and stopped_by == "time":
        raise InputError(f"train.max_minutes={cfg.max_minutes} ended training before its first step "
                         f"(nothing was saved); raise it")
    wall = elapsed_before + time.perf_counter() - t0
    final = losses[-1][1] if losses else float("nan")
    raw = ema.swap_into(model) if ema is not None else None
    model.eval()
    return TrainResult(step, stopped_by, wall, tokens, final, start, losses, flops=flops, planned_steps=cfg.steps,
                       warmup_steps=cfg.warmup_steps, raw_weights=raw, curve=curve, precision=precision,
                       precision_reason=precision_reason)
