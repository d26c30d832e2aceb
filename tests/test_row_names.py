"""A row's name cannot make its files collide with another row's or with a stage's, whatever the name."""

from __future__ import annotations

import itertools

import pytest

from stages.common import CHECKPOINTS, row_checkpoints
from tests.repo_copy import run, tiny_repo
from tests.reference_rows import profile_raw
from textdiff.config import RESERVED_ROW_NAMES, ParamsError, parse_params

# Names that collided before rows kept their parts in folders of their own: another row's part
# (encoder + encoder_decoder), a stage's metrics beside the rows' (control@guide_classifier).
ADVERSARIAL = ["encoder", "encoder_decoder", "encoder_autoencoder", "guide_classifier", "control", "control_judge",
               "sweep", "infill", "ar_loss", "model", "decoder", "autoencoder", "tokenizer", "features"]
PARTS = ("model", "autoencoder", "decoder")


@pytest.mark.parametrize("name", sorted(RESERVED_ROW_NAMES))
def test_a_reserved_name_is_refused_naming_the_row_key(name):
    with pytest.raises(ParamsError, match=rf"rows\.{name}: .*pipeline uses"):
        parse_params({"rows": {name: {"family": "ar"}}}, "params.yaml")


@pytest.mark.parametrize("name", ["a/b", "../up", "Ar", "1ar", "ar-2", "ar.b", "x" * 65])
def test_a_path_like_or_malformed_name_is_refused_naming_the_row_key(name):
    with pytest.raises(ParamsError, match=r"rows\..*(lowercase letters, digits and _|at most 64)"):
        parse_params({"rows": {name: {"family": "ar"}}}, "params.yaml")


def test_no_rows_checkpoint_folder_holds_or_is_another_rows_or_the_judges():
    folders = {(row, part): row_checkpoints(row, part) for row in ADVERSARIAL for part in PARTS}
    folders[("judge stage", "")] = CHECKPOINTS / "judge"
    for (a, pa), (b, pb) in itertools.permutations(folders.items(), 2):
        assert not (pa == pb or pa in pb.parents), f"{a}'s folder {pa} overlaps {b}'s {pb}"


def test_dvc_builds_the_graph_of_rows_named_like_stages_and_parts(tmp_path):
    """DVC refuses a graph in which two stages write one path (or one writes inside another's folder)."""
    family = {"encoder": "encoder", "encoder_decoder": "encoder", "encoder_autoencoder": "latent"}
    tiny = profile_raw("tiny")["rows"]
    template = {"ar": tiny["ar"], "encoder": tiny["encoder"], "latent": tiny["latent_planner"]}
    rows = {name: template[family.get(name, "ar")] for name in ADVERSARIAL}
    repo = tiny_repo(tmp_path, rows=rows)
    out = run(["dvc", "dag", "--dot"], repo)
    for name in ADVERSARIAL:
        assert f"train@{name}" in out.stdout
