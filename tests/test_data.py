import json

import pandas as pd
import pytest

from textdiff.config import DataParams
from textdiff.data.clean import clean_records, clean_text, length
from textdiff.data.sources import CorpusError, load_records
from textdiff.data.splits import split_records


def test_bundled_corpus_keeps_fresh_rotten_labels():
    records = load_records(DataParams())
    labels = {r["label"] for r in records}
    assert {"fresh", "rotten", "plot"} <= labels
    assert len([r for r in records if r["label"] in ("fresh", "rotten")]) > 12000


def test_cleaning_dedup_and_length_filter():
    assert clean_text("  a\tb\x00c \u200b\n d ") == "a b c d"
    recs = [{"text": t, "label": None} for t in
            ["Good film.", "Good  film.", "", "   ", "one", "a b c d e f", "x y z"]]
    kept, dropped = clean_records(recs, min_length=2, max_length=4, unit="words")
    assert [r["text"] for r in kept] == ["Good film.", "x y z"]
    assert dropped == {"empty": 2, "duplicate": 1, "too_short": 1, "too_long": 1, "label": 0}
    assert length("Good, film!", "tokens") == 4 and length("Good, film!", "words") == 2


def test_splits_are_deterministic_disjoint_and_complete():
    recs = [{"text": f"s{i}", "label": None} for i in range(1000)]
    a = split_records(recs, 0.1, 0.05, seed=3)
    b = split_records(recs, 0.1, 0.05, seed=3)
    c = split_records(recs, 0.1, 0.05, seed=4)
    assert a == b and a["test"] != c["test"]
    assert (len(a["train"]), len(a["valid"]), len(a["test"])) == (850, 100, 50)
    all_texts = [r["text"] for s in a.values() for r in s]
    assert sorted(all_texts) == sorted(r["text"] for r in recs)


def test_split_that_leaves_no_test_data_names_the_param():
    recs = [{"text": f"s{i}", "label": None} for i in range(10)]
    with pytest.raises(ValueError, match="data.test_fraction"):
        split_records(recs, 0.3, 0.01, seed=0)


def _files_params(paths, **kw):
    return DataParams(source="files", files=[str(p) for p in paths], **kw)


def test_local_files_of_every_format(tmp_path):
    (tmp_path / "a.txt").write_text("first line\nsecond line\n", encoding="utf-8")
    (tmp_path / "b.jsonl").write_text(json.dumps({"body": "third", "y": "pos"}) + "\n")
    pd.DataFrame({"body": ["fourth"], "y": ["neg"]}).to_csv(tmp_path / "c.csv", index=False)
    pd.DataFrame({"body": ["fifth"], "y": ["pos"]}).to_parquet(tmp_path / "d.parquet")
    recs = load_records(_files_params([tmp_path / n for n in ["a.txt", "b.jsonl", "c.csv", "d.parquet"]],
                                      text_column="body", label_column="y"))
    assert [r["text"] for r in recs] == ["first line", "second line", "third", "fourth", "fifth"]
    assert [r["label"] for r in recs] == [None, None, "pos", "neg", "pos"]


def test_huggingface_source_through_load_dataset(tmp_path):
    folder = tmp_path / "hfdata"
    folder.mkdir()
    (folder / "train.jsonl").write_text("".join(json.dumps({"sentence": f"row {i}"}) + "\n" for i in range(5)))
    recs = load_records(DataParams(source="huggingface", hf_dataset=str(folder), text_column="sentence",
                                   label_column=None))
    assert sorted(r["text"] for r in recs) == [f"row {i}" for i in range(5)]


def test_missing_file_is_named(tmp_path):
    with pytest.raises(CorpusError, match=r"data.files\[0\]: file not found: .*nope.txt"):
        load_records(_files_params([tmp_path / "nope.txt"]))


def test_missing_column_is_named(tmp_path):
    pd.DataFrame({"review": ["x"]}).to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(CorpusError, match=r"c.csv: no column 'text' \(columns: review\)"):
        load_records(_files_params([tmp_path / "c.csv"]))
    (tmp_path / "j.jsonl").write_text('{"text": "ok"}\n{"other": 1}\n')
    with pytest.raises(CorpusError, match=r"j.jsonl:2: no field 'text'"):
        load_records(_files_params([tmp_path / "j.jsonl"]))


def test_non_utf8_bytes_name_file_and_line(tmp_path):
    (tmp_path / "latin.txt").write_bytes("fine\ncaf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"latin.txt:2: not UTF-8"):
        load_records(_files_params([tmp_path / "latin.txt"]))
    (tmp_path / "latin.csv").write_bytes("text\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"latin.csv:2: not UTF-8"):
        load_records(_files_params([tmp_path / "latin.csv"]))


def test_unsupported_extension(tmp_path):
    (tmp_path / "x.docx").write_text("hi")
    with pytest.raises(CorpusError, match="unsupported file type '.docx'"):
        load_records(_files_params([tmp_path / "x.docx"]))
