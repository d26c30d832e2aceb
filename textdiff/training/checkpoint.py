"""Periodic checkpoints that survive a kill.

Each checkpoint is a folder ``step_NNNNNNN`` (weights in safetensors, optimiser
and RNG state in a tensors-only torch file, loop state in JSON) written under a
temporary name and renamed whole; ``latest`` names the newest complete one. A
checkpoint is resumed only if its fingerprint (params and data) matches.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from textdiff.io import write_text


def save_checkpoint(folder: Path, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    state: dict, fingerprint: str, keep: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:07d}"
    tmp = folder / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(state_dict_for_saving(model), str(tmp / "model.safetensors"))
    torch.save({"optimizer": optimizer.state_dict(), "rng": torch.get_rng_state()}, tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps({**state, "step": step, "fingerprint": fingerprint}))
    final = folder / name
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    write_text(folder / "latest", name)
    # the oldest written go first (not the lowest step: a run with new params may sit beside later-step
    # checkpoints of the old one, which must not evict the new run's)
    for old in sorted(folder.glob("step_*"), key=lambda d: d.stat().st_mtime_ns)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    fingerprint: str) -> dict | None:
    """Restore the latest checkpoint into ``model`` and ``optimizer``; return its state or None."""
    pointer = folder / "latest"
    if not pointer.exists():
        return None
    ckpt = folder / pointer.read_text().strip()
    state = json.loads((ckpt / "state.json").read_text())
    if state.get("fingerprint") != fingerprint:
        return None
    model.load_state_dict(load_file(str(ckpt / "model.safetensors"), device=_device_of(model)))
    extra = torch.load(ckpt / "optimizer.pt", weights_only=True, map_location=_device_of(model))
    optimizer.load_state_dict(extra["optimizer"])
    torch.set_rng_state(extra["rng"].cpu())
    return state


def state_dict_for_saving(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Contiguous, untied tensors (safetensors refuses shared storage)."""
    return {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}


def _device_of(model: torch.nn.Module) -> str:
    return str(next(model.parameters()).device)
