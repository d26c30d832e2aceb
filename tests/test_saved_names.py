"""Models saved before the training T was named ``num_train_timesteps`` still load: their sections are renamed
on load, and today's names pass through untouched."""

import json

import torch

from textdiff.config import FAMILY_PARAMS
from textdiff.data.vocab import Vocab
from textdiff.persist import load_model, renamed_params, save_model


def test_old_names_are_renamed_and_new_ones_kept():
    old = {"family": "embedding", "model": {"diffusion": {"steps": 2000, "timesteps": "uniform", "schedule": "sqrt"}}}
    assert renamed_params(old)["model"]["diffusion"] == {"num_train_timesteps": 2000, "time_sampling": "uniform",
                                                         "schedule": "sqrt"}
    assert renamed_params({"family": "d3pm", "model": {"timesteps": 50}})["model"] == {"num_train_timesteps": 50}
    new = {"family": "d3pm", "model": {"num_train_timesteps": 50}, "sample": {"steps": 8}}
    assert renamed_params(new) == new
    assert old["model"]["diffusion"]["steps"] == 2000  # the caller's dict is not changed


def test_a_d3pm_model_saved_under_the_old_key_loads_with_its_weights(tmp_path):
    vocab = Vocab(size=12, pad_id=0, bos_id=1, eos_id=2, mask_id=4)
    section = FAMILY_PARAMS["d3pm"].model_validate(
        {"family": "d3pm", "model": {"d_model": 16, "n_layers": 1, "n_heads": 2, "seq_len": 6,
                                     "num_train_timesteps": 20}, "sample": {"steps": 4}})
    from textdiff.families import d3pm

    torch.manual_seed(0)
    model = d3pm.build(section, vocab)
    dumped = section.model_dump(mode="json")
    save_model(tmp_path, model, "d3pm_old", dumped, vocab)
    meta = json.loads((tmp_path / "model.json").read_text())
    meta["params"]["model"]["timesteps"] = meta["params"]["model"].pop("num_train_timesteps")
    (tmp_path / "model.json").write_text(json.dumps(meta))
    loaded, _ = load_model(tmp_path)
    assert loaded.num_train_timesteps == 20
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
