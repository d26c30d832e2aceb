from pathlib import Path

import pytest
import yaml

from textdiff.config import DefaultsParams, ParamsError, load_params, parse_params
from tests.reference_rows import REPO_PARAMS, profile_params, shipped_raw

ROOT = Path(__file__).resolve().parents[1]


def test_default_and_tiny_params_load():
    p = REPO_PARAMS
    assert list(p.rows)[0] == "ar" and p.models["sedd_uniform"] == "sedd" and p.row("ar").model.d_model == 128
    for row, section in p.rows.items():  # every row shares the backbone size, canvas and step budget
        canvas = section.space.num_latents if section.family == "latent" else 48  # a latent row's canvas: its latents
        assert (section.model.d_model, section.model.n_layers, section.model.seq_len, section.train.steps) == \
            (128, 4, canvas, 400), row
    assert p.swept_rows == ["mdlm", "d3pm_uniform", "d3pm_absorb", "sedd_absorb", "sedd_uniform"]
    assert p.rows_of("encoder") == ["encoder", "encoder_emb"]
    tiny = profile_params("tiny")
    assert tiny.row("ar").train.steps < p.row("ar").train.steps


def test_the_defaults_block_states_the_schema_defaults():
    """Deleting params.yaml's defaults block changes nothing: it shows what runs and is the lever for every row."""
    raw = shipped_raw()
    assert DefaultsParams.model_validate(raw["defaults"]) == DefaultsParams()
    without = {k: v for k, v in raw.items() if k != "defaults"}
    assert parse_params(without).rows == parse_params(raw).rows


def test_defaults_merge_under_every_row_and_a_row_overrides_them():
    p = parse_params({"defaults": {"train": {"steps": 7}, "model": {"d_model": 64}},
                      "rows": {"a": {"family": "mdlm", "train": {"lr": 0.01}},
                               "b": {"family": "mdlm", "train": {"steps": 9}},
                               "enc": {"family": "encoder", "decoder": {"train": {"steps": 20}}}}})
    a, b, enc = p.row("a"), p.row("b"), p.row("enc")
    assert (a.train.steps, a.train.lr, a.model.d_model) == (7, 0.01, 64)
    assert (b.train.steps, b.train.lr) == (9, 1e-3)
    assert a.model.positions == "rotary" and a.sample.num_samples == 128  # the family's and the schema's defaults
    # a part written in part keeps its own defaults: the decoder's share and warmup, the encoder's share
    assert (enc.decoder.train.steps, enc.decoder.train.budget_share, enc.decoder.train.warmup_steps) == (20, 0.2, 30)
    assert enc.train.budget_share == 0.8 and enc.train.steps == 7
    assert p.row_families == {"a": "mdlm", "b": "mdlm", "enc": "encoder"}
    with pytest.warns(DeprecationWarning, match="Params.models is deprecated"):
        assert p.models == p.row_families
    assert p.swept_rows == ["a", "b"]


def test_a_new_row_of_an_existing_family_is_one_section():
    raw = shipped_raw()
    raw["rows"]["mdlm_big"] = {"family": "mdlm", "model": {"d_model": 256, "n_heads": 8}}
    p = parse_params(raw)
    assert p.row("mdlm_big").model.d_model == 256 and p.row("mdlm_big").train.steps == 400
    assert "mdlm_big" in p.swept_rows


@pytest.mark.parametrize("raw, path, words", [
    ({"rows": {"ar": {"family": "ar", "train": {"stepz": 3}}}}, "rows.ar.train.stepz", "unknown key"),
    ({"rows": {"ar": {"family": "ar", "train": {"steps": "many"}}}}, "rows.ar.train.steps", "integer"),
    ({"rows": {"ar": {"family": "ar", "train": {"steps": -5}}}}, "rows.ar.train.steps", "greater than or equal to 1"),
    ({"defaults": {"train": {"steps": 0}}}, "defaults.train.steps", "greater than or equal to 1"),
    ({"tokenizer": {"vocab_size": 0}}, "tokenizer.vocab_size", "greater than or equal"),
    ({"data": {"test_fraction": 0}}, "data.test_fraction", "greater than 0"),
    ({"rows": {"ar": {"family": "ar", "model": {"d_model": 100, "n_heads": 3}}}}, "rows.ar.model", "divisible"),
    ({"defaults": {"model": {"d_model": 100, "n_heads": 3}}}, "defaults.model", "divisible"),
    ({"data": {"valid_fraction": 0.6, "test_fraction": 0.5}}, "data", "leave training data"),
    ({"rows": {"x": {"model": {}}}}, "rows.x", "no `family:` key"),
    ({"rows": {"x": {"family": "gpt"}}}, "rows.x", "family 'gpt' is not a family"),
    ({"rows": {"Big-Row": {"family": "ar"}}}, "rows.Big-Row", "lowercase letters, digits and _"),
    ({"rows": {}}, "rows", "at least 1 item"),
    ({"steps_sweep": {"families": ["ar"]}}, "steps_sweep.families.0", "Input should be"),
    ({"rows": {"s": {"family": "sedd", "model": {"graph": "uniform", "schedule": "loglinear"}}}}, "rows.s.model",
     "needs schedule: geometric"),
    ({"rows": {"s": {"family": "sedd", "model": {"graph": "absorbing", "schedule": "geometric"}}}}, "rows.s.model",
     "prior term is infinite"),
    ({"rows": {"m": {"family": "mdlm", "model": {"schedule": "geometric"}}}}, "rows.m.model.schedule",
     "Input should be 'loglinear' or 'cosine'"),
    ({"rows": {"d": {"family": "d3pm", "model": {"num_train_timesteps": 10}, "sample": {"steps": 20}}}}, "rows.d",
     "exceeds model.num_train_timesteps"),
])
def test_bad_params_name_the_key(raw, path, words):
    with pytest.raises(ParamsError) as err:
        parse_params(raw, "params.yaml")
    msg = str(err.value)
    assert f"{path}:" in msg and words in msg and "params.yaml" in msg


def test_the_layout_before_rows_gets_a_way_forward():
    with pytest.raises(ParamsError, match="move each row's section under `rows:`"):
        parse_params({"models": {"ar": "ar"}, "ar": {}}, "params.yaml")


def test_load_params_reports_file_problems(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("ar: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)


def test_every_error_is_listed_at_once(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump({"seed": "x", "rows": {"ar": {"family": "ar", "sample": {"top_p": 1.5}}}}))
    with pytest.raises(ParamsError) as err:
        load_params(f)
    assert "seed:" in str(err.value) and "rows.ar.sample.top_p:" in str(err.value)


def test_the_schema_default_row_takes_the_defaults_block_too():
    p = parse_params({"defaults": {"train": {"steps": 20}}})
    assert list(p.rows) == ["ar"] and p.row("ar").train.steps == 20
    assert parse_params({}).row("ar").train.steps == 400
