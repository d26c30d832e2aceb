"""A local corpus is data DVC tracks: editing one line of it invalidates `prepare`, and `prepare` records
the file's hash."""

import hashlib
import json

import pytest

from tests.repo_copy import run, tiny_repo

pytestmark = pytest.mark.slow

LINES = [{"text": f"review number {i} says the film was {'good' if i % 2 else 'bad'} and long .",
          "label": "fresh" if i % 2 else "rotten"} for i in range(80)]


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    data = {"source": "files", "files": ["corpus/reviews.jsonl"], "text_column": "text", "label_column": "label",
            "keep_labels": None, "max_examples": None, "valid_fraction": 0.1, "test_fraction": 0.1}
    repo = tiny_repo(tmp_path_factory.mktemp("corpus"), data=data)
    (repo / "corpus" / "reviews.jsonl").write_text("".join(json.dumps(r) + "\n" for r in LINES))
    run(["dvc", "repro", "prepare"], repo)
    return repo


def test_prepare_records_the_corpus_file_and_its_hash(repo):
    stats = json.loads((repo / "data" / "prepared" / "stats.json").read_text())
    digest = hashlib.sha256((repo / "corpus" / "reviews.jsonl").read_bytes()).hexdigest()
    assert stats["corpus"]["files"] == [{"path": "corpus/reviews.jsonl", "sha256": digest,
                                         "bytes": (repo / "corpus" / "reviews.jsonl").stat().st_size,
                                         "oversized_lines": 0}]
    assert stats["raw_records"] == 80 and len(stats["data_sha256"]) == 64


def test_editing_one_line_of_the_corpus_invalidates_prepare(repo):
    assert "prepare" not in run(["dvc", "status", "prepare"], repo).stdout
    corpus = repo / "corpus" / "reviews.jsonl"
    lines = corpus.read_text().splitlines()
    lines[7] = json.dumps({"text": "an edited review that was not there before .", "label": "fresh"})
    corpus.write_text("\n".join(lines) + "\n")
    status = run(["dvc", "status", "prepare"], repo).stdout
    assert "prepare:" in status and "corpus" in status, status


def test_a_corpus_file_outside_corpus_dir_is_refused_with_its_key(repo):
    params = repo / "params.yaml"
    original = params.read_text()
    try:
        params.write_text(original.replace("corpus/reviews.jsonl", "elsewhere/reviews.jsonl"))
        out = run(["bin/py", "-m", "stages.prepare"], repo, check=False)
    finally:
        params.write_text(original)
    assert out.returncode == 2 and "data.files[0]" in out.stderr and "corpus/" in out.stderr
