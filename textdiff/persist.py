"""Saving and loading trained models: weights in safetensors, the family, its
params section and the vocabulary in JSON, from which the family rebuilds the
module before the weights are loaded (nothing is unpickled)."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from textdiff.data.vocab import Vocab
from textdiff.io import atomic_path, read_json, write_json
from textdiff.training.checkpoint import state_dict_for_saving


def save_model(folder: str | Path, model: torch.nn.Module, family: str, params: dict, vocab: Vocab) -> None:
    folder = Path(folder)
    with atomic_path(folder / "model.safetensors") as tmp:
        save_file(state_dict_for_saving(model), str(tmp))
    write_json(folder / "model.json", {"family": family, "params": params, "vocab": vocab.to_dict()})


def load_model(folder: str | Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict]:
    from textdiff.families import get_family

    folder = Path(folder)
    weights = folder / "model.safetensors"
    if not weights.exists():
        raise FileNotFoundError(f"no trained model at {weights} (run its train stage first)")
    meta = read_json(folder / "model.json")
    family = get_family(meta["family"])
    model = family.build(family.PARAMS.model_validate(meta["params"]), Vocab(**meta["vocab"]))
    model.load_state_dict(load_file(str(weights), device=str(device)))
    return model.to(device).eval(), meta
