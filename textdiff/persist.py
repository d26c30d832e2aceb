"""Saving and loading trained models: weights in safetensors, the family, its
params section and the vocabulary in JSON, from which the family rebuilds the
module before the weights are loaded (nothing is unpickled)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from textdiff.data.vocab import Vocab
from textdiff.errors import InputError
from textdiff.io import fsync_dir, fsync_file, read_json, write_failed, write_json, write_refused
from textdiff.training.checkpoint import file_sha256, state_dict_for_saving


def save_model(folder: str | Path, model: torch.nn.Module, row: str, params: dict, vocab: Vocab,
               raw_weights: dict | None = None) -> None:
    """``model.safetensors`` holds what samples and scores (the EMA weights when the run kept them);
    ``raw_weights`` (the last optimizer weights) go beside it as ``raw.safetensors``. Every file is written
    in a staging folder first: a write the disk refuses leaves the model already in ``folder`` as it was."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / ".saving"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir()
        save_file(state_dict_for_saving(model), str(staging / "model.safetensors"))
        if raw_weights is not None:
            save_file({k: v.contiguous() for k, v in raw_weights.items()}, str(staging / "raw.safetensors"))
        write_json(staging / "model.json", {"row": row, "family": params["family"], "params": params,
                                            "vocab": vocab.to_dict(),
                                            "weights_sha256": file_sha256(staging / "model.safetensors")})
        for written in staging.iterdir():
            fsync_file(written)
    except Exception as err:
        shutil.rmtree(staging, ignore_errors=True)
        if not write_refused(err):
            raise
        raise write_failed(folder / "model.safetensors", err, f"the model already in {folder} is unchanged") from None
    for name in ("model.safetensors", "raw.safetensors", "model.json"):  # model.json last: it names the weights
        if (staging / name).exists():
            os.replace(staging / name, folder / name)
        elif name == "raw.safetensors" and (folder / name).exists():
            (folder / name).unlink()
    fsync_dir(folder)
    shutil.rmtree(staging, ignore_errors=True)


def renamed_params(section: dict) -> dict:
    """A saved row section in today's names: models saved before the training T was ``num_train_timesteps``
    wrote it as ``model.diffusion.steps`` (Gaussian rows) or ``model.timesteps`` (D3PM), and the way a batch
    draws t as ``model.diffusion.timesteps`` (now ``time_sampling``)."""
    model = dict(section.get("model") or {})
    if isinstance(model.get("timesteps"), int):
        model["num_train_timesteps"] = model.pop("timesteps")
    if isinstance(model.get("diffusion"), dict):
        diffusion = dict(model["diffusion"])
        for old, new in (("steps", "num_train_timesteps"), ("timesteps", "time_sampling")):
            if old in diffusion:
                diffusion[new] = diffusion.pop(old)
        model["diffusion"] = diffusion
    return {**section, "model": model} if "model" in section else section


def model_family(meta: dict, folder: Path) -> str:
    """The family of a saved model. A model.json written before rows named their family holds the row's
    name under ``family``: that loads where the row was named after its family (``ar``, the judge)."""
    from textdiff.params import FAMILIES

    name = meta.get("params", {}).get("family") or meta["family"]
    if name not in FAMILIES:
        raise InputError(f"{folder / 'model.json'} names row {meta['family']!r} but not its family (written before "
                         f"rows named theirs): re-run the stage that trained it (`dvc repro train@ROW`)")
    return name


def load_model(folder: str | Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict]:
    from textdiff.families import get_family

    folder = Path(folder)
    weights = folder / "model.safetensors"
    if not weights.exists():
        raise FileNotFoundError(f"no trained model at {weights} (run its train stage first)")
    meta = read_json(folder / "model.json")
    expected = meta.get("weights_sha256")
    if expected is not None and file_sha256(weights) != expected:
        raise InputError(f"{weights} is damaged: its SHA-256 differs from the one in {folder / 'model.json'} "
                         f"(re-run its train stage, e.g. `dvc repro -f train@ROW`, or `dvc checkout`)")
    family = get_family(model_family(meta, folder))
    meta["params"] = renamed_params(meta["params"])
    model = family.build(family.PARAMS.model_validate(meta["params"]), Vocab(**meta["vocab"]))
    model.load_state_dict(load_file(str(weights), device=str(device)))
    return model.to(device).eval(), meta
