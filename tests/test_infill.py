"""Infilling: templates, every family that can infill keeps the known tokens, the metrics by hand."""

import random

import numpy as np
import pytest
import torch

from textdiff.data.vocab import Vocab
from textdiff.errors import InputError
from tests.reference_rows import REPO_PARAMS, row_family
from textdiff.families import canvas_drawer
from textdiff.tasks.infill import (Template, canvas_tensors, distinct_fills, fill_records, fill_templates,
                                   held_out_templates, infill_metrics, masked_spans, parse_template, token_accuracy)

SMALL = {"d_model": 16, "n_layers": 1, "n_heads": 2, "seq_len": 24}


@pytest.mark.parametrize("two", [False, True])
def test_spans_cover_the_share_and_keep_a_known_token_around_each(two):
    rng = random.Random(0)
    for _ in range(300):
        n = rng.randint(5, 30)
        spans = masked_spans(n, rng, (0.2, 0.5), two)
        assert len(spans) == (2 if two else 1)
        blank = [i for a, b in spans for i in range(a, b)]
        assert len(blank) == len(set(blank)) and all(b > a for a, b in spans)
        assert 0 not in blank and n - 1 not in blank  # known tokens at both ends
        if two:
            assert spans[1][0] > spans[0][1]  # a known token between the spans
        share = len(blank) / n
        assert share <= 0.5 + 1 / n and (share >= 0.2 - 1 / n or len(blank) == (2 if two else 1))


def test_held_out_templates_alternate_one_and_two_spans_and_are_seeded(small_tokenizer):
    texts = ["the film is a quiet and lovely thing to watch tonight"] * 6 + ["short"]
    a = held_out_templates(small_tokenizer, texts, num=4, min_tokens=5, max_tokens=40, share=(0.2, 0.5), seed=3)
    b = held_out_templates(small_tokenizer, texts, num=4, min_tokens=5, max_tokens=40, share=(0.2, 0.5), seed=3)
    assert a == b and len(a) == 4
    assert [len(t.spans) for t in a] == [1, 2, 1, 2]
    assert all(t.tokens[0] == small_tokenizer.bos_token_id and t.tokens[-1] == small_tokenizer.eos_token_id for t in a)


def test_a_user_template_puts_blank_tokens_at_each_blank(small_tokenizer):
    tpl = parse_template(small_tokenizer, "the film was ___ and ___ .", 32, blank_tokens=2)
    assert len(tpl.spans) == 2 and all(b - a == 2 for a, b in tpl.spans)
    assert [tpl.tokens[i] for i in tpl.blanks] == [small_tokenizer.mask_token_id] * 4
    known = [t for i, t in enumerate(tpl.tokens) if i not in tpl.blanks]
    assert small_tokenizer.decode(known[1:-1]) == "the film was and ."


def test_bad_templates_say_what_is_wrong(small_tokenizer):
    with pytest.raises(InputError, match="has no blank: mark each span to fill with ___"):
        parse_template(small_tokenizer, "no blank here", 32, 3)
    with pytest.raises(InputError, match="mdlm's canvas holds 8"):
        parse_template(small_tokenizer, "a long template with a ___ in it and more words", 8, 3, row="mdlm")


def _tiny(row: str, vocab: Vocab):
    section = REPO_PARAMS.row(row)
    model = section.model.model_copy(update=SMALL)
    section = type(section).model_validate({**section.model_dump(), "model": model.model_dump()})
    torch.manual_seed(0)
    model = row_family(row).build(section, vocab).eval()
    with torch.no_grad():  # random weights everywhere (no zero-initialised gate), so every position reads the others
        for weight in model.parameters():
            weight.normal_(0.0, 0.3)
    return model, section


INFILL_ROWS = ["ar", "embedding", "simplex", "mdlm", "d3pm_absorb", "d3pm_uniform", "sedd_absorb", "sedd_uniform"]


@pytest.mark.parametrize("row", INFILL_ROWS)
def test_every_infilling_family_keeps_the_known_tokens(row, small_tokenizer):
    vocab = Vocab.from_tokenizer(small_tokenizer)
    model, section = _tiny(row, vocab)
    sample = section.sample.model_copy(update={"steps": 4}) if "steps" in type(section.sample).model_fields \
        else section.sample
    texts = ["the film is a quiet and lovely thing", "a dull , flat and lifeless film , sadly"]
    templates = held_out_templates(small_tokenizer, texts, num=2, min_tokens=5, max_tokens=20, share=(0.3, 0.5), seed=0)

    draw = canvas_drawer(row_family(row), model, sample, torch.device("cpu"))

    canvases = fill_templates(draw, templates, SMALL["seq_len"], vocab.pad_id, fills=3, batch_size=4, seed=0,
                              device="cpu")
    known, tokens = canvas_tensors(templates, SMALL["seq_len"], vocab.pad_id, 3)
    assert canvases.shape == known.shape
    assert torch.equal(canvases[known], tokens[known])  # the known tokens, <bos>, <eos> and padding held
    again = fill_templates(draw, templates, SMALL["seq_len"], vocab.pad_id, fills=3, batch_size=4, seed=0,
                           device="cpu")
    assert torch.equal(canvases, again)  # seeded
    other = [Template(t.text, tuple(tok if i in t.blanks or i in (0, len(t.tokens) - 1) else 100 + i
                                    for i, tok in enumerate(t.tokens)), t.spans) for t in templates]
    changed = fill_templates(draw, other, SMALL["seq_len"], vocab.pad_id, fills=3, batch_size=4, seed=0, device="cpu")
    if row in ("embedding", "simplex"):  # every step's input holds the known positions at their clean value
        assert_steps_see_the_known_tokens(row, model, draw, templates, vocab)
    else:  # the fills read the known tokens (they are not only written back at the end)
        assert not torch.equal(canvases[~known], changed[~known])
    records = fill_records(small_tokenizer, canvases, templates, 3)
    assert [len(r["fills"]) for r in records] == [3, 3]
    assert records[0]["reference_spans"][0].strip() in texts[0]


def assert_steps_see_the_known_tokens(row, model, draw, templates, vocab):
    from textdiff.spaces.simplex import token_simplex

    known, tokens = canvas_tensors(templates, SMALL["seq_len"], vocab.pad_id, 1)
    seen = []
    name = "predict_x0" if row == "embedding" else "logits"
    original = getattr(model, name)
    setattr(model, name, lambda x, *a: (seen.append(x.detach().clone()), original(x, *a))[1])
    try:
        draw(len(known), torch.Generator().manual_seed(0), (known, tokens))
    finally:
        setattr(model, name, original)
    clean = model.embedding(tokens) if row == "embedding" else token_simplex(tokens, vocab.size, model.k)
    assert len(seen) == 4 and all(torch.allclose(x[known], clean[known]) for x in seen)
    assert not any(torch.allclose(x[~known], clean[~known]) for x in seen)


@pytest.mark.parametrize("row", ["encoder", "latent_planner"])
def test_rows_that_cannot_infill_say_why(row):
    reason = row_family(row).CANNOT_INFILL
    assert reason and "token" in reason


def test_metrics_by_hand():
    tpl = Template("a b c d", (0, 11, 12, 13, 14, 1), ((2, 4),))
    fills = [{"tokens": [12, 13], "spans": ["x y"], "text": ""}, {"tokens": [12, 99], "spans": ["x z"], "text": ""},
             {"tokens": [12, 99], "spans": ["x z"], "text": ""}]
    record = {**tpl.to_dict(), "reference_spans": ["x y"], "fills": fills}
    assert token_accuracy(record) == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert distinct_fills(record) == pytest.approx((2 - 1) / (3 - 1))
    m = infill_metrics([record, record], np.array([2.0] * 6), np.array([1] * 6), resamples=0, seed=0)
    assert m["filled_gen_ppl"] == pytest.approx(np.exp(2.0))
    assert m["blank_share"] == pytest.approx(2 / 4)
    # BLEU-2 over words: unigram matches 2+1+1 of 6, bigram 1+0+0 of 3, same length: sqrt(4/6 · 1/3)
    assert m["span_bleu2"] == pytest.approx(100 * np.sqrt(4 / 6 * 1 / 3))
