"""Device choice and mixed precision: CUDA when present, nothing assumes it."""

from __future__ import annotations

import contextlib

import torch


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from textdiff.params.base import ParamsError

        raise ParamsError("device: cuda was asked for but torch sees no CUDA device (use device: auto or cpu)")
    return torch.device(name)


def autocast(device: torch.device, precision: str = "auto"):
    """The training forward's precision: ``auto`` is bf16 autocast on GPU and full precision on CPU; ``bf16`` and
    ``fp32`` ask for one on either (weights, optimiser state and the loss's reduction stay fp32 under autocast)."""
    bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    if bf16 and device.type in ("cuda", "cpu"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def generator(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)
