"""Periodic checkpoints that survive a kill and are checked before they are trusted.

Each checkpoint is a folder ``step_NNNNNNN`` (weights in safetensors, the EMA
weights when the run keeps them, optimiser and RNG state in a tensors-only torch
file, loop state in JSON, and ``checksums.json``: the SHA-256 of each of those
files) written under a temporary name and renamed whole; ``latest`` names the
newest complete one. A checkpoint is resumed only if its checksums and its
fingerprint (params, data and code) match; a damaged one is skipped with a
warning that names the file, and the newest intact one is used instead.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from textdiff.io import fsync_dir, write_failed, write_refused, write_text

CHECKSUMS = "checksums.json"


class DamagedCheckpoint(ValueError):
    pass


def save_checkpoint(folder: Path, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    state: dict, fingerprint: str, keep: int = 2, ema=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:07d}"
    tmp = folder / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        save_file(state_dict_for_saving(model), str(tmp / "model.safetensors"))
        if ema is not None:
            save_file(ema.state_dict(), str(tmp / "ema.safetensors"))
        torch.save({"optimizer": optimizer.state_dict(), "rng": torch.get_rng_state()}, tmp / "optimizer.pt")
        (tmp / "state.json").write_text(json.dumps({**state, "step": step, "fingerprint": fingerprint}))
        sums = {f.name: file_sha256(f) for f in sorted(tmp.iterdir())}
        (tmp / CHECKSUMS).write_text(json.dumps(sums, indent=1))
    except Exception as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if not write_refused(err):
            raise
        raise write_failed(folder / name, err, "training resumes from the last checkpoint that was written") from None
    final = folder / name
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    fsync_dir(folder)
    write_text(folder / "latest", name)  # a refused write is one line (textdiff.io); the checkpoint is found without it
    # the oldest written go first (not the lowest step: a run with new params may sit beside later-step
    # checkpoints of the old one, which must not evict the new run's)
    for old in sorted(folder.glob("step_*"), key=lambda d: d.stat().st_mtime_ns)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    fingerprint: str, ema=None) -> dict | None:
    """Restore the newest intact checkpoint of this fingerprint into ``model``, ``optimizer`` (and ``ema``);
    return its state, or None when there is none. Damaged ones are skipped with a warning."""
    for ckpt in candidates(folder):
        try:
            verify(ckpt)
            state = json.loads((ckpt / "state.json").read_text())
        except DamagedCheckpoint as err:
            warnings.warn(f"{err}; falling back to an older checkpoint", stacklevel=2)
            continue
        if state.get("fingerprint") != fingerprint:
            continue  # another run's checkpoint (other params, data or code)
        device = _device_of(model)
        try:  # before anything is restored: a refused file falls back with the model untouched
            extra = torch.load(ckpt / "optimizer.pt", weights_only=True, map_location=device)
        except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
            warnings.warn(f"checkpoint file {ckpt / 'optimizer.pt'} holds more than tensors, which is not loaded "
                          f"({type(err).__name__}: {str(err).splitlines()[0][:160]}); falling back to an older "
                          f"checkpoint", stacklevel=2)
            continue
        model.load_state_dict(load_file(str(ckpt / "model.safetensors"), device=device))
        if ema is not None and (ckpt / "ema.safetensors").exists():
            ema.load_state_dict(load_file(str(ckpt / "ema.safetensors"), device=device))
        optimizer.load_state_dict(extra["optimizer"])
        torch.set_rng_state(extra["rng"].cpu())
        return state
    return None


def candidates(folder: Path) -> list[Path]:
    """The checkpoint folders to try, newest first: ``latest``'s target, then the others by step."""
    if not folder.is_dir():
        return []
    found = sorted(folder.glob("step_*"), reverse=True)
    pointer = folder / "latest"
    named = pointer.read_text(errors="replace").strip() if pointer.is_file() else ""
    if named and (folder / named) in found:
        found.remove(folder / named)
        found.insert(0, folder / named)
    elif named:
        warnings.warn(f"{pointer} names {named!r}, which is missing; trying the other checkpoints", stacklevel=3)
    return found


def verify(ckpt: Path) -> None:
    """Raise DamagedCheckpoint naming the first file whose bytes differ from ``checksums.json``."""
    try:
        sums = json.loads((ckpt / CHECKSUMS).read_text())
        if not isinstance(sums, dict) or "state.json" not in sums:
            raise ValueError("no entry for state.json")
    except (OSError, ValueError) as err:
        raise DamagedCheckpoint(f"checkpoint {ckpt}: {CHECKSUMS} unreadable ({err})") from None
    for name, digest in sums.items():
        path = ckpt / name
        if not path.is_file():
            raise DamagedCheckpoint(f"checkpoint {path} is missing")
        if file_sha256(path) != digest:
            raise DamagedCheckpoint(f"checkpoint file {path} is damaged (its SHA-256 differs from {CHECKSUMS})")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def state_dict_for_saving(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Contiguous, untied tensors (safetensors refuses shared storage)."""
    return {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}


def _device_of(model: torch.nn.Module) -> str:
    return str(next(model.parameters()).device)


class CheckpointLock:
    """An exclusive lock on one checkpoint folder for the life of a training run (``fcntl.flock``, released by
    the kernel if the process dies), so that two runs of one row in one checkout cannot write over each other."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / ".lock"
        self.handle = None

    def __enter__(self) -> "CheckpointLock":
        import fcntl
        import os
        import socket
        import time

        from textdiff.errors import InputError

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.path, "a+")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.seek(0)
            holder = self.handle.read().strip() or "another process"
            self.handle.close()
            raise InputError(f"{self.path.parent} is in use by {holder}: another training run of this component is "
                             f"going on in this checkout; wait for it or stop it") from None
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}")
        self.handle.flush()
        return self

    def __exit__(self, *exc) -> None:
        import fcntl

        self.handle.seek(0)
        self.handle.truncate()
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()
