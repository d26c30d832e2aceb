from pathlib import Path

import pytest
import yaml

from textdiff.config import ParamsError, load_params, parse_params

ROOT = Path(__file__).resolve().parents[1]


def test_default_and_tiny_params_load():
    p = load_params(ROOT / "params.yaml")
    assert list(p.models)[0] == "ar" and p.models["sedd_uniform"] == "sedd" and p.ar.model.d_model == 128
    for row in p.models:  # every row shares the backbone size, canvas and step budget
        section = getattr(p, row)
        canvas = section.space.num_latents if p.models[row] == "latent" else 48  # a latent row's canvas: its latents
        assert (section.model.d_model, section.model.n_layers, section.model.seq_len, section.train.steps) == \
            (128, 4, canvas, 400), row
    tiny = load_params(ROOT / "profiles" / "tiny.yaml")
    assert tiny.ar.train.steps < p.ar.train.steps


@pytest.mark.parametrize("raw, path, words", [
    ({"ar": {"train": {"stepz": 3}}}, "ar.train.stepz", "unknown key"),
    ({"ar": {"train": {"steps": "many"}}}, "ar.train.steps", "integer"),
    ({"ar": {"train": {"steps": -5}}}, "ar.train.steps", "greater than or equal to 1"),
    ({"tokenizer": {"vocab_size": 0}}, "tokenizer.vocab_size", "greater than or equal"),
    ({"data": {"test_fraction": 0}}, "data.test_fraction", "greater than 0"),
    ({"ar": {"model": {"d_model": 100, "n_heads": 3}}}, "ar.model", "divisible"),
    ({"data": {"valid_fraction": 0.6, "test_fraction": 0.5}}, "data", "leave training data"),
    ({"models": {"ar": "ar", "nope": "x"}}, "(top level)", "known rows"),
    ({"models": {"ar": "ar", "sedd_absorb": "d3pm"}}, "(top level)", "sedd_absorb: sedd"),
    ({"models": {"ar": "ar"}, "steps_sweep": {"models": {"mdlm": "mdlm"}}}, "(top level)", "must also be in models"),
    ({"sedd_uniform": {"model": {"graph": "uniform", "schedule": "loglinear"}}}, "sedd_uniform.model",
     "needs schedule: geometric"),
    ({"d3pm_absorb": {"model": {"timesteps": 10}, "sample": {"steps": 20}}}, "d3pm_absorb", "exceeds model.timesteps"),
])
def test_bad_params_name_the_key(raw, path, words):
    with pytest.raises(ParamsError) as err:
        parse_params(raw, "params.yaml")
    msg = str(err.value)
    assert f"{path}:" in msg and words in msg and "params.yaml" in msg


def test_load_params_reports_file_problems(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("ar: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)


def test_every_error_is_listed_at_once(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump({"seed": "x", "ar": {"sample": {"top_p": 1.5}}}))
    with pytest.raises(ParamsError) as err:
        load_params(f)
    assert "seed:" in str(err.value) and "ar.sample.top_p:" in str(err.value)
