"""Device choice and mixed precision: CUDA when present, nothing assumes it."""

from __future__ import annotations

import contextlib

import torch


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from textdiff.config import ParamsError

        raise ParamsError("device: cuda was asked for but torch sees no CUDA device (use device: auto or cpu)")
    return torch.device(name)


def autocast(device: torch.device):
    """bf16 autocast on GPU; full precision on CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def generator(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)
