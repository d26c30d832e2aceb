"""Bad input is one clear error that names the key, file or line, raised before anything is written."""

from pathlib import Path

import pandas as pd
import pytest
import torch

from textdiff.config import DataParams, ParamsError, load_params, parse_params, read_yaml
from textdiff.data.sources import CorpusError, load_records
from tests.reference_rows import shipped_text

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


def test_the_repository_params_have_no_repeated_keys(tmp_path):
    shipped = tmp_path / "params.yaml"  # params.yaml as git has it, not the user's working file
    shipped.write_text(shipped_text())
    load_params(shipped)
    for path in sorted((ROOT / "profiles").glob("*.yaml")):
        read_yaml(path)  # a profile is an overlay: tests/test_profiles.py validates it over the shipped params


def corpus_params(*names) -> DataParams:
    return DataParams(source="files", files=list(names), label_column=None)


def test_a_link_in_corpus_leading_outside_it_is_refused_with_how_to_copy(tmp_path):
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("a fine sentence here\n")
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "link.txt").symlink_to(outside)
    with pytest.raises(CorpusError, match=r"data.files\[0\]: corpus/link.txt leads to .*elsewhere.txt, outside "
                                          r"corpus/ .*cp --remove-destination"):
        load_records(corpus_params("corpus/link.txt"), base_dir=tmp_path)


def test_a_linked_corpus_folder_is_refused_too(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "a.txt").write_text("a fine sentence here\n")
    (tmp_path / "corpus").symlink_to(tmp_path / "real")
    with pytest.raises(CorpusError, match=r"data.files\[0\]: corpus/a.txt leads to .*real/a.txt, outside corpus/"):
        load_records(corpus_params("corpus/a.txt"), base_dir=tmp_path)


def test_a_link_that_stays_inside_corpus_is_read(tmp_path):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "a.txt").write_text("a fine sentence here\n")
    (tmp_path / "corpus" / "b.txt").symlink_to(tmp_path / "corpus" / "a.txt")
    assert load_records(corpus_params("corpus/b.txt"), base_dir=tmp_path) == [{"text": "a fine sentence here",
                                                                              "label": None}]


@pytest.mark.parametrize("suffix", [".txt", ".jsonl"])
def test_an_enormous_line_is_dropped_without_being_held(tmp_path, suffix):
    """A 40 MB line is skipped a bounded piece at a time (before: the whole file was held, then split)."""
    import json
    import tracemalloc

    from textdiff.data.sources import load_corpus
    line = ("word " * 8_000_000).strip()
    as_line = (lambda t: json.dumps({"text": t})) if suffix == ".jsonl" else (lambda t: t)
    path = tmp_path / f"c{suffix}"
    with open(path, "w") as f:
        f.write(as_line("the first sentence") + "\n" + as_line(line) + "\n" + as_line("the last sentence") + "\n")
    del line
    tracemalloc.start()
    try:
        records, identity = load_corpus(files(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [r["text"] for r in records] == ["the first sentence", "the last sentence"]
    assert identity["files"][0]["oversized_lines"] == 1
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.0f} MiB while reading a file of {path.stat().st_size / 2**20:.0f} MiB"


def test_an_enormous_line_in_a_table_is_named_before_pandas_holds_it(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("text\nfine words here\n" + "x" * 200_000 + "\nmore fine words\n")
    with pytest.raises(CorpusError, match=r"c.csv:3: a line over 65536 bytes"):
        load_records(files(path))


def test_the_flow_gives_prefects_server_the_params_wait():
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

    from pipelines import prefect_api
    from textdiff.config import OrchestrationParams
    default = OrchestrationParams().server_startup_timeout_s
    assert default >= 120  # Prefect's own 20 s ran out on a loaded 2-core machine
    with prefect_api(default):
        assert PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value() == default


def test_a_prefect_server_that_does_not_start_is_one_line_saying_what_to_do(tmp_path):
    """A real ephemeral server that cannot open its database: one line naming the param and the way out, no
    traceback (before: Prefect's RuntimeError and its traceback)."""
    import os
    import subprocess
    import sys
    script = tmp_path / "flow.py"
    script.write_text("from pipelines import prefect_api\nfrom prefect import flow\n\n@flow\ndef nothing():\n"
                      "    return 1\n\nwith prefect_api(5):\n    nothing()\n")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(tmp_path / "home"), PREFECT_SERVER_ANALYTICS_ENABLED="false", PYTHONPATH=str(ROOT),
               PREFECT_SERVER_DATABASE_CONNECTION_URL="sqlite+aiosqlite:////proc/no-such-dir/prefect.db")
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 1
    assert "RuntimeError" not in out.stderr  # the server's own log may hold its database error; the flow's does not
    message = [line for line in out.stderr.splitlines() if "did not answer" in line]
    assert len(message) == 1 and message[0].startswith("Prefect's temporary API server did not answer within 5 s "
                                                       "(orchestration.server_startup_timeout_s"), out.stderr[-2000:]
    assert "PREFECT_API_URL=" in message[0]


def test_a_truncated_tokenizer_file_is_named_with_how_to_restore_it(tmp_path):
    from textdiff.data.tokenizer import load_tokenizer, train_tokenizer
    from textdiff.errors import InputError
    train_tokenizer(["a small corpus of words", "and a few more words here"] * 20, 300).save_pretrained(tmp_path)
    data = (tmp_path / "tokenizer.json").read_bytes()
    (tmp_path / "tokenizer.json").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=rf"the tokenizer in {tmp_path} cannot be loaded, .*damaged or truncated "
                                         r"\(JSONDecodeError.*dvc repro -f tokenizer"):
        load_tokenizer(tmp_path)


def test_a_judge_whose_weights_hold_a_pickled_object_is_named_with_the_safetensors_way(tmp_path):
    """A real Hugging Face folder (tiny GPT-2) whose pytorch_model.bin holds a Python function: never loaded
    (weights_only), and said in one line instead of torch's UnpicklingError."""
    import os

    from transformers import GPT2Config, GPT2LMHeadModel

    from textdiff.data.tokenizer import train_tokenizer
    from textdiff.eval.judge import HFJudge
    tok = train_tokenizer(["a small corpus of words", "and a few more words here"] * 20, 300)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=32, n_embd=16, n_layer=1, n_head=2)).save_pretrained(
        tmp_path)
    tok.save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    torch.save({"transformer.wte.weight": torch.zeros(1), "object": os.getcwd}, tmp_path / "pytorch_model.bin")
    with pytest.raises(ParamsError, match=r"evaluate.judge: .*pytorch_model.bin holds pickled Python objects, which "
                                          r"are never loaded .*safe_serialization=True"):
        HFJudge(tmp_path, torch.device("cpu"))
