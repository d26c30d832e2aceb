"""Bad input is one clear error that names the key, file or line, raised before anything is written."""

from pathlib import Path

import pandas as pd
import pytest
import torch

from textdiff.config import DataParams, ParamsError, load_params, parse_params
from textdiff.data.sources import CorpusError, load_records

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def test_a_key_given_twice_names_both_lines(tmp_path):
    path = write(tmp_path, "seed: 0\nar:\n  train:\n    steps: 5\n    lr: 0.001\n    steps: 7\n")
    with pytest.raises(ParamsError, match=r"params.yaml: line 6: key 'steps' is given twice .*first at line 4"):
        load_params(path)


def test_an_empty_params_file_is_an_error(tmp_path):
    with pytest.raises(ParamsError, match="params.yaml is empty"):
        load_params(write(tmp_path, "# nothing yet\n"))


def test_a_row_without_its_family_is_an_error():
    with pytest.raises(ParamsError, match=r"rows.mdlm: no `family:` key"):
        parse_params({"rows": {"ar": {"family": "ar"}, "mdlm": {}}}, "params.yaml")


@pytest.mark.parametrize("raw, key, words", [
    ({"steps_sweep": {"steps": [0]}}, "steps_sweep.steps.0", "greater than or equal to 1"),
    ({"steps_sweep": {"steps": [8, -5]}}, "steps_sweep.steps.1", "greater than or equal to 1"),
    ({"rows": {"ar": {"family": "ar", "train": {"lr": float("inf")}}}}, "rows.ar.train.lr", "finite"),
    ({"rows": {"ar": {"family": "ar", "train": {"lr": float("nan")}}}}, "rows.ar.train.lr", "finite"),
    ({"defaults": {"train": {"lr": float("inf")}}}, "defaults.train.lr", "finite"),
    ({"rows": {"ar": {"family": "ar", "sample": {"num_samples": 1}}}}, "rows.ar.sample.num_samples",
     "greater than or equal to 2"),
    ({"seed": 2 ** 40}, "seed", "less than 2147483648"),
    ({"rows": {"embedding": {"family": "embedding", "sample": {"steps": 10, "clamp_from": 10}}}},
     "rows.embedding.sample", "clamping would never happen"),
])
def test_bad_values_name_the_key(raw, key, words):
    with pytest.raises(ParamsError) as err:
        parse_params({"rows": {"ar": {"family": "ar"}}, **raw}, "params.yaml")
    assert f"{key}:" in str(err.value) and words in str(err.value), str(err.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_on_a_machine_without_it_is_a_params_error():
    from textdiff.device import resolve_device

    with pytest.raises(ParamsError, match="device: cuda was asked for"):
        resolve_device("cuda")


def files(*paths) -> DataParams:
    return DataParams(source="files", files=[str(p) for p in paths], label_column=None)


@pytest.mark.parametrize("value, kind", [('["a", "list"]', "list"), ('{"an": "object"}', "dict"), ("3", "int")])
def test_a_jsonl_text_that_is_not_a_string_names_the_line(tmp_path, value, kind):
    (tmp_path / "c.jsonl").write_text('{"text": "fine"}\n{"text": ' + value + "}\n")
    with pytest.raises(CorpusError, match=rf"c.jsonl:2: field 'text' is a {kind}, not a string"):
        load_records(files(tmp_path / "c.jsonl"))


def test_an_empty_csv_is_named(tmp_path):
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(CorpusError, match=r"e.csv: the file is empty"):
        load_records(files(tmp_path / "e.csv"))


def test_a_corrupt_parquet_is_named(tmp_path):
    pd.DataFrame({"text": ["a b c"] * 50}).to_parquet(tmp_path / "c.parquet")
    data = (tmp_path / "c.parquet").read_bytes()
    (tmp_path / "c.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorpusError, match=r"c.parquet: not a readable parquet file"):
        load_records(files(tmp_path / "c.parquet"))


def test_a_directory_named_like_a_corpus_file_is_named(tmp_path):
    (tmp_path / "reviews.csv").mkdir()
    with pytest.raises(CorpusError, match=r"data.files\[0\]: .*reviews.csv is a directory"):
        load_records(files(tmp_path / "reviews.csv"))


def test_a_bad_byte_deep_in_a_csv_names_its_line(tmp_path):
    lines = ["text"] + [f"sentence number {i}" for i in range(1, 201)] + ["caf\xe9 au lait"]
    (tmp_path / "c.csv").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    with pytest.raises(CorpusError, match=r"c.csv:202: not UTF-8"):
        load_records(files(tmp_path / "c.csv"))


def test_a_judge_path_that_is_not_a_model_is_named(tmp_path):
    from textdiff.eval.judge import HFJudge

    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ParamsError, match=r"evaluate.judge: .* is not a Hugging Face model folder"):
        HFJudge(tmp_path, torch.device("cpu"))
    (tmp_path / "config.json").write_text("{}")  # a config that names no model type
    with pytest.raises(ParamsError, match=r"evaluate.judge: cannot load a causal LM"):
        HFJudge(tmp_path, torch.device("cpu"))


def test_the_repository_params_have_no_repeated_keys():
    for path in [ROOT / "params.yaml", *sorted((ROOT / "profiles").glob("*.yaml"))]:
        load_params(path)
