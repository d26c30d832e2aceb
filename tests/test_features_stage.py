"""The shared MiniLM encodings (stage features): a stage reads them only when they hold exactly its sentences
at its canvas, and encodes the sentences itself otherwise; the real MiniLM from its package."""

from __future__ import annotations

import torch

from textdiff.spaces.minilm import FeatureCache, cached_features

TEXTS = ["a quiet , lovely film .", "the plot goes nowhere fast .", "funny and sad at once .",
         "too long by half , and dull .", "a mess , but a warm one .", "nothing new here ."]


def shared(tmp_path, monkeypatch, texts=TEXTS, max_length=16) -> FeatureCache:
    cache = FeatureCache.build(texts, "encodings", max_length, 4)
    cache.save(tmp_path / "features" / "train")
    return cache


def test_head_keeps_the_first_sentences_and_the_statistics():
    cache = FeatureCache.build(TEXTS, "encodings", 16, 4)
    head = cache.head(2)
    assert len(head) == 2 and head.lengths() == cache.lengths()[:2]
    for i in range(2):
        assert torch.equal(head.sentence(i)[1], cache.sentence(i)[1])
    assert torch.equal(head.mean, cache.mean) and torch.equal(head.std, cache.std)
    assert len(cache.head(100)) == len(TEXTS)


def test_holds_compares_sentences_kind_and_canvas():
    cache = FeatureCache.build(TEXTS, "encodings", 16, 4)
    assert cache.holds(TEXTS, "encodings", 16)
    assert not cache.holds(TEXTS, "encodings", 8)  # another canvas
    assert not cache.holds(TEXTS, "embeddings", 16)
    assert not cache.holds(TEXTS[:-1] + ["nothing new there ."], "encodings", 16)  # same length, another word
    assert not cache.holds(TEXTS[:-1], "encodings", 16)


def test_a_stage_reads_the_shared_cache_cut_to_its_sentences(tmp_path, monkeypatch, capsys):
    saved = shared(tmp_path, monkeypatch)
    got = cached_features(tmp_path / "features", "train", TEXTS[:4], 16, 4, "cpu")
    assert len(got) == 4 and "encoding" not in capsys.readouterr().out
    assert torch.equal(got.features, saved.head(4).features)


def test_other_sentences_or_canvas_are_encoded_here_with_the_same_maths(tmp_path, monkeypatch, capsys):
    saved = shared(tmp_path, monkeypatch)
    other = cached_features(tmp_path / "features", "train", TEXTS[:4], 12, 4, "cpu")
    assert "encoding 4 train sentences with MiniLM here" in capsys.readouterr().out
    assert other.max_length == 12
    changed = ["a loud , lovely film ."] + TEXTS[1:]
    got = cached_features(tmp_path / "features", "train", changed, 16, 4, "cpu")
    assert "encoding 6 train sentences" in capsys.readouterr().out
    assert got.holds(changed, "encodings", 16)
    # the sentences both hold encode alike (batching differs: float noise only)
    assert torch.allclose(got.sentence(3)[1], saved.sentence(3)[1], atol=2e-2)
    missing = cached_features(tmp_path / "features", "test", TEXTS[:2], 16, 4, "cpu")  # no test split written
    assert len(missing) == 2 and "encoding 2 test sentences" in capsys.readouterr().out


def test_input_embeddings_are_always_looked_up_here(tmp_path, monkeypatch, capsys):
    shared(tmp_path, monkeypatch)
    got = cached_features(tmp_path / "features", "train", TEXTS[:2], 16, 4, "cpu", kind="embeddings")
    assert got.kind == "embeddings" and len(got) == 2 and "encoding" not in capsys.readouterr().out
