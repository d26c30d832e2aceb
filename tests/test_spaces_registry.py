"""The space registry: every row's space params name a kind, a stored space is read back through it, and a
cache that does not match the params is refused with the folder and the fix."""

from pathlib import Path

import pytest
import torch

from textdiff.spaces import registry as spaces
from tests.reference_rows import REPO_PARAMS

ROOT = Path(__file__).resolve().parents[1]


def test_every_row_of_params_yaml_has_a_space_kind_that_says_what_it_trains():
    p = REPO_PARAMS
    kinds = {row: spaces.kind_of(p.row(row).space) for row in p.row_families}
    assert {kinds[r] for r in ("encoder", "encoder_emb")} == {"features"}
    assert {kinds[r] for r in ("latent_planner", "latent_ld4lg")} == {"latent"}
    assert {r for r, k in kinds.items() if k == "tokens"} == set(p.row_families) - {
        "encoder", "encoder_emb", "latent_planner", "latent_ld4lg"}
    for row, kind in kinds.items():
        space = spaces.for_row(p.row(row).space)
        assert space.kind == kind
        assert space.trains_decoder == (kind == "features") and space.trains_autoencoder == (kind == "latent")


def test_an_unknown_kind_and_a_space_without_its_folder_are_named():
    with pytest.raises(ValueError, match="unknown space kind 'pixels'; known: \\['features', 'latent', 'tokens'\\]"):
        spaces.load("pixels", "x")
    with pytest.raises(ValueError, match="made without its folder .* its data cannot be read"):
        spaces.load("latent").latents


def test_a_latent_cache_is_read_once_and_checked_against_the_params(tmp_path):
    from textdiff.config import LatentSpaceParams
    from textdiff.spaces.autoencoders.latents import LatentCache

    params = LatentSpaceParams(autoencoder="ld4lg", num_latents=4, latent_dim=8)
    LatentCache.of(torch.randn(10, 4, 8), "ld4lg").save(tmp_path / "data")
    space = spaces.for_row(params, tmp_path)
    space.check(params)
    assert space.latents is space.latents and len(space.latents) == 10  # read once
    wrong = params.model_copy(update={"num_latents": 2})
    with pytest.raises(ValueError, match=r"are ld4lg \(4, 8\); params ask for ld4lg \(2, 8\): rerun the space stage"):
        space.check(wrong)
