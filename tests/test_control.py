"""Controllable generation: the guidance maths by hand, strength 0 is unguided bit for bit, and guidance on a
briefly trained model moves an independent judge's success rate above the unguided rate.

The language: "the film is A and B ." with A, B two adjectives of one polarity (fresh: good, great, …;
rotten: bad, awful, …). Unguided, a model that learned it writes either polarity about half the time; guided
toward a label it should write that label's adjectives. The judge that counts success is logistic regression
on the real MiniLM's sentence features, trained on the same language, never seen by the guidance.
"""

from __future__ import annotations

import os
import random

import pytest
import torch

from textdiff.config import ParamsError
from textdiff.data.vocab import Vocab
from tests.reference_rows import REPO_PARAMS, profile_raw, row_family
from textdiff.families import canvas_drawer
from textdiff.families.contract import RunContext
from textdiff.sampling.guidance import Guidance, tilted_log_probs
from textdiff.tasks.attribute_classifier import AttributeClassifier, train_classifier
from textdiff.tasks.control import guided_texts, no_labels_reason, steered_labels

CPU = torch.device("cpu")
FRESH = ["good", "great", "lovely", "superb", "brilliant", "charming"]
ROTTEN = ["bad", "awful", "dull", "boring", "terrible", "clumsy"]
NOUNS = ["film", "movie", "story", "cast"]
SEQ_LEN = 12


def sentiment_sentences(n: int, seed: int) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(n):
        label = rng.choice(["fresh", "rotten"])
        a, b = rng.sample(FRESH if label == "fresh" else ROTTEN, 2)
        texts.append(f"the {rng.choice(NOUNS)} is {a} and {b} .")
        labels.append(label)
    return texts, labels


# --------------------------------------------------------------------------- the maths


def test_tilt_of_a_linear_score_is_a_softmax_shift_by_hand():
    """For score(p) = Σ p·w the gradient is w, so the tilted distribution is softmax(log p + γ·w)."""
    torch.manual_seed(0)
    w = torch.randn(2, 3, 5)
    log_p = torch.log_softmax(torch.randn(2, 3, 5), -1)
    log_p[0, 1] = torch.tensor([0.0, *[float("-inf")] * 4])  # a fixed (one-hot) position stays fixed
    guide = Guidance(lambda p: (p * w).sum((1, 2)), strength=0.7)
    out = tilted_log_probs(log_p, guide)
    assert torch.allclose(out[0, 0], torch.log_softmax(log_p[0, 0] + 0.7 * w[0, 0], -1), atol=1e-6)
    assert out[0, 1, 0] == 0 and torch.isinf(out[0, 1, 1:]).all()


def test_the_classifier_reads_ids_and_distributions_the_same_and_ignores_special_tokens():
    torch.manual_seed(0)
    clf = AttributeClassifier(10, special_ids=[0, 1], labels=["a", "b"], dim=4, hidden=4)
    ids = torch.tensor([[0, 5, 7, 1, 1]])
    one_hot = torch.nn.functional.one_hot(ids, 10).float()
    assert torch.allclose(clf(ids), clf(one_hot), atol=1e-6)
    assert torch.allclose(clf(ids), clf(torch.tensor([[5, 7]])), atol=1e-6)  # specials weigh nothing


# --------------------------------------------------------------------------- strength 0 is unguided


GUIDED_ROWS = ["embedding", "simplex", "mdlm", "d3pm_absorb", "d3pm_uniform"]


def _tiny(row: str, vocab: Vocab):
    section = REPO_PARAMS.row(row)
    section = type(section).model_validate({**section.model_dump(), "model": {
        **section.model.model_dump(), "d_model": 16, "n_layers": 1, "n_heads": 2, "seq_len": 16}})
    torch.manual_seed(0)
    return row_family(row).build(section, vocab).eval(), section.sample.model_copy(update={"steps": 5})


@pytest.mark.parametrize("row", GUIDED_ROWS)
def test_strength_zero_reproduces_the_unguided_samples_and_a_strong_guide_changes_them(row, small_tokenizer):
    vocab = Vocab.from_tokenizer(small_tokenizer)
    model, sample = _tiny(row, vocab)
    torch.manual_seed(1)
    clf = AttributeClassifier(vocab.size, small_tokenizer.all_special_ids, ["fresh", "rotten"], dim=8, hidden=8)

    draw = canvas_drawer(row_family(row), model, sample, CPU)

    def texts(guide):
        return guided_texts(draw, model, small_tokenizer, 6, guide, batch_size=3, seed=0, device=CPU)

    unguided = texts(None)
    assert texts(clf.guidance("fresh", 0.0)) == unguided
    assert texts(clf.guidance("fresh", 1e4)) != unguided  # the guidance does reach the samples


@pytest.mark.parametrize("row", ["ar", "sedd_absorb", "encoder", "latent_planner"])
def test_rows_that_cannot_be_guided_say_why(row):
    assert row_family(row).CANNOT_GUIDE


def test_labels_are_checked_against_the_corpus():
    assert steered_labels(None, ["b", "a", "b"]) == ["a", "b"]
    with pytest.raises(ParamsError, match="control.labels: unknown label 'sweet'; the training split's labels are"):
        steered_labels(["sweet"], ["fresh", "rotten"])
    assert "no labels" in no_labels_reason([], None) and "control needs a label column" in no_labels_reason([], None)
    assert "one label only" in no_labels_reason(["x", "x"], "category")
    assert no_labels_reason(["x", "y"], "category") is None


# --------------------------------------------------------------------------- guidance works on a trained model


SEED = int(os.environ.get("TEXTDIFF_LEARNING_SEED", "0"))  # the margins below were measured over seeds 0–2
STRENGTH = {"mdlm": 4.0, "embedding": 16.0}
# Measured over seeds 0–2 (unguided, the judge calls 21–31 % of the samples fresh): mdlm (600 steps, strength 4):
# the mean guided success over both labels 0.795–0.825 (unguided it is 0.5 by construction), each label's guided
# success above its unguided rate by 0.15–0.44; embedding (1500 steps, strength 16): mean 0.98, each label
# above unguided by 0.21–0.75. The thresholds are about half of the smallest of those margins.
MEAN_SUCCESS_ABOVE_HALF = 0.15
EACH_LABEL_ABOVE_UNGUIDED = 0.07


@pytest.fixture(scope="module")
def sentiment(tmp_path_factory):
    from textdiff.data.tokenizer import load_tokenizer, train_tokenizer
    from textdiff.tasks.attribute_judge import fit_judge

    texts, labels = sentiment_sentences(1500, 0)
    folder = tmp_path_factory.mktemp("sentiment_tok")
    train_tokenizer(texts, vocab_size=400).save_pretrained(str(folder))
    tokenizer = load_tokenizer(folder)
    assert all(len(tokenizer(" " + w)["input_ids"]) == 1 for w in FRESH + ROTTEN + NOUNS)  # a token per word
    clf = train_classifier(tokenizer, texts, labels, seq_len=SEQ_LEN, steps=300, batch_size=32, lr=3e-3, dim=16,
                           hidden=16, max_drop=0.5, seed=SEED)
    judge_texts, judge_labels = sentiment_sentences(300, 1)
    judge = fit_judge(judge_texts, judge_labels, c=1.0, seed=0)
    held_texts, held_labels = sentiment_sentences(200, 2)
    assert judge.accuracy(held_texts, held_labels) > 0.95  # the judge itself is sound
    return tokenizer, texts, clf, judge


def _train(row: str, tokenizer, texts: list[str], steps: int):
    section = row_family(row).PARAMS.model_validate({
        "model": {"d_model": 64, "n_layers": 1, "n_heads": 4, "seq_len": SEQ_LEN,
                  **({"positions": "rotary"} if row == "mdlm" else {})},
        "train": {"steps": steps, "batch_size": 32, "lr": 3e-3, "warmup_steps": 20, "weight_decay": 0.0,
                  "checkpoint_every": 10_000}})
    model, _ = row_family(row).fit(section, tokenizer, texts,
                                   RunContext(seed=SEED, device=CPU, progress=False))
    return model.eval(), section.sample.model_copy(update={"steps": 16})


@pytest.mark.parametrize("row,steps", [("mdlm", 600), ("embedding", 1500)])
def test_guidance_raises_the_independent_success_rate_above_unguided(row, steps, sentiment):
    tokenizer, texts, clf, judge = sentiment
    model, sample = _train(row, tokenizer, texts, steps)
    vocab = model.vocab

    draw = canvas_drawer(row_family(row), model, sample, CPU)

    unguided = guided_texts(draw, model, tokenizer, 48, None, batch_size=48, seed=SEED, device=CPU)
    unguided_labels = judge.predict(unguided)
    successes = {}
    for label in ("fresh", "rotten"):
        guided = guided_texts(draw, model, tokenizer, 48, clf.guidance(label, STRENGTH[row]), batch_size=48,
                              seed=SEED, device=CPU)
        base = unguided_labels.count(label) / 48
        successes[label] = judge.predict(guided).count(label) / 48
        assert successes[label] >= base + EACH_LABEL_ABOVE_UNGUIDED, (label, base, successes[label], guided[:3])
    assert sum(successes.values()) / 2 >= 0.5 + MEAN_SUCCESS_ABOVE_HALF, successes


def test_a_corpus_without_labels_says_so_in_every_control_stage(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[1]
    params = profile_raw("tiny")
    params["data"] = {**params["data"], "label_column": None, "keep_labels": None}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    prepared = tmp_path / "data" / "prepared"
    prepared.mkdir(parents=True)
    for split in ("train", "test"):
        (prepared / f"{split}.jsonl").write_text('{"text": "a film", "label": null}\n' * 3)
    env = {"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    for stage in ("guide_classifier", "control_judge", "control mdlm"):
        out = subprocess.run([sys.executable, "-m", f"stages.{stage.split()[0]}", *stage.split()[1:]], cwd=tmp_path,
                             env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
    for path in ("guide_classifier.json", "control_judge.json", "control/mdlm.json"):
        record = json.loads((tmp_path / "metrics" / path).read_text())
        assert not record["supported"] and "control needs a label column" in record["reason"], record
