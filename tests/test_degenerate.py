"""Degenerate output named (textdiff.eval.degenerate), on hand-made texts and on real sentences."""

import math
from pathlib import Path

import pytest

import numpy as np

from textdiff.eval.degenerate import degenerate_report, is_empty, is_repeated_unit, noise_like, noise_like_threshold
from textdiff.io import read_jsonl

VALID = Path(__file__).resolve().parents[1] / "data" / "prepared" / "valid.jsonl"


def test_per_sample_rules():
    assert is_empty("") and is_empty("  \n\t") and not is_empty(" a ")
    assert is_repeated_unit("Innnnnnnnnnnnnnnnn")             # one run of one character
    assert is_repeated_unit("Innnnnnnn Innnnnnnn Innnnnnnn")  # runs ≥ 6 make up 24 of 27 characters
    assert is_repeated_unit("!!!!!!!!!!")
    assert is_repeated_unit("the the the movie the")          # 'the' is 4 of 5 words
    assert is_repeated_unit("good good bad bad good good")    # 4 of 6
    assert not is_repeated_unit("the movie was sooooooo good, and the cast too")  # a real 'soooooo'
    assert not is_repeated_unit("the the the")                # under 4 words: rule (a) does not apply
    assert is_repeated_unit("a b a c")                        # 2 of 4 words: 50 % counts
    assert not is_repeated_unit("a b a c d")                  # 2 of 5 does not
    assert not is_repeated_unit("")                           # empty is counted as empty, not repeated


def test_a_row_of_innnnn_is_degenerate():
    texts = ["I" + "n" * k for k in range(6, 30)]
    out = degenerate_report(texts)
    assert out["degenerate"] and out["repeated_token_share"] == 1.0 and out["empty_share"] == 0.0
    assert "100% of samples are one repeated token or character" in out["reasons"]
    assert "div cannot be computed: no 4-grams" in out["reasons"]  # one word each: no 4-grams either
    assert "mem cannot be computed: no 4-grams" in out["reasons"]


def test_empty_strings_are_degenerate():
    out = degenerate_report(["", "  ", "\n"] * 5)
    assert out == {"degenerate": True, "empty_share": 1.0, "repeated_token_share": 0.0, "noise_like_share": None,
                   "reasons": ["100% of samples are empty", "div cannot be computed: no 4-grams",
                               "mem cannot be computed: no 4-grams"]}
    assert degenerate_report([])["reasons"] == ["no samples"]


def test_a_majority_of_empty_or_repeated_samples_is_degenerate():
    normal = ["the film is a quiet and lovely study of grief"] * 4
    out = degenerate_report(["", "", ""] + ["la la la la la"] * 3 + normal)  # 3 + 3 of 10
    assert out["degenerate"] and out["empty_share"] == 0.3 and out["repeated_token_share"] == 0.3
    assert out["reasons"] == ["60% of samples are empty (30%) or one repeated token (30%)"]
    # 87 % empty, quoted as such
    out = degenerate_report([""] * 87 + normal * 3 + ["a quiet study of grief and loss"])
    assert out["reasons"][0] == "87% of samples are empty"
    # exactly half empty is not "most"
    assert not degenerate_report(["", ""] + normal[:2])["degenerate"]


def test_div_or_mem_nan_is_degenerate():
    out = degenerate_report(["a b c", "d e f"])  # words but no 4-grams
    assert out["degenerate"] and out["empty_share"] == 0 and out["repeated_token_share"] == 0
    assert out["reasons"] == ["div cannot be computed: no 4-grams", "mem cannot be computed: no 4-grams"]
    ok = ["the film is a quiet and lovely study of grief"] * 3
    assert degenerate_report(ok, div=0.4, mem=0.1)["degenerate"] is False
    out = degenerate_report(ok, div=0.4, mem=math.nan)
    assert out["reasons"] == ["mem cannot be computed"]


def test_real_sentences_are_not_degenerate(review_texts):
    rows = read_jsonl(VALID) if VALID.exists() else []
    texts = [r["text"] for r in rows][:50] if len(rows) >= 50 else review_texts[:50]
    out = degenerate_report(texts)
    assert out["degenerate"] is False and out["reasons"] == [], out
    assert out["empty_share"] == 0.0 and out["repeated_token_share"] <= 0.04


@pytest.mark.parametrize("share", [0.4, 0.6])
def test_the_repeated_threshold_is_a_strict_majority(share, review_texts):
    n = 50
    k = int(share * n)
    out = degenerate_report(["Innnnnnnnnnn"] * k + review_texts[: n - k])
    assert out["degenerate"] is (share > 0.5)


def test_the_noise_like_threshold_is_the_floors_first_quartile():
    floor = [9.0, 7.0, 8.0, 10.0, 6.5, float("nan")]  # an empty text scores nan and is left out
    assert noise_like_threshold(floor) == pytest.approx(np.quantile([9.0, 7.0, 8.0, 10.0, 6.5], 0.25))
    assert noise_like_threshold([8.0]) == 8.0
    with pytest.raises(ValueError, match="noise floor has no scored text"):
        noise_like_threshold([float("nan")])


def test_a_majority_of_noise_like_samples_is_degenerate_and_every_share_is_reported():
    texts = ["zq plo vex", "warm and funny film", "", "ik ka lo pru", "a slow but honest drama"]
    nats = [8.1, 4.0, float("nan"), 7.0, 3.5]
    assert noise_like(texts, nats, 7.0) == [True, False, False, True, False]  # empty is empty, not noise
    assert noise_like(texts, nats, None) is None
    out = degenerate_report(texts, nats_per_token=nats, noise_threshold=7.0)
    assert out["noise_like_share"] == pytest.approx(0.4) and not out["degenerate"]
    noisy = degenerate_report(texts, nats_per_token=[8.1, 7.5, float("nan"), 7.0, 9.0], noise_threshold=7.0)
    assert noisy["degenerate"] and noisy["noise_like_share"] == pytest.approx(0.8)
    assert noisy["reasons"][0].startswith("80% of samples are as unpredictable to the judge as noise")
    assert degenerate_report(texts)["noise_like_share"] is None  # without the floor's threshold: not measured
