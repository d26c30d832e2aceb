"""Saving and loading backbones: weights in safetensors, config and metadata in JSON."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from textdiff.io import atomic_path, read_json, write_json
from textdiff.nn import BackboneConfig, Transformer
from textdiff.training.checkpoint import state_dict_for_saving


def save_model(folder: str | Path, model: Transformer, meta: dict | None = None, name: str = "model") -> None:
    folder = Path(folder)
    with atomic_path(folder / f"{name}.safetensors") as tmp:
        save_file(state_dict_for_saving(model), str(tmp))
    write_json(folder / f"{name}.json", {"backbone": model.cfg.to_dict(), **(meta or {})})


def load_model(folder: str | Path, device: torch.device | str = "cpu", name: str = "model") -> tuple[Transformer, dict]:
    folder = Path(folder)
    weights = folder / f"{name}.safetensors"
    if not weights.exists():
        raise FileNotFoundError(f"no trained model at {weights} (run its train stage first)")
    meta = read_json(folder / f"{name}.json")
    model = Transformer(BackboneConfig(**meta["backbone"]))
    model.load_state_dict(load_file(str(weights), device=str(device)))
    return model.to(device).eval(), meta
