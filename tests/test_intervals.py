"""Bootstrap intervals of the sample metrics (textdiff.eval.intervals) and the ELBO's Monte-Carlo error
(textdiff.eval.elbo), against hand values, closed forms and direct enumeration."""

import itertools
import math
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from textdiff.eval.elbo import elbo_perplexity, mc_standard_error
from textdiff.eval.heldout_interval import heldout_interval, ppl_interval, sentence_bootstrap_se
from textdiff.eval.intervals import (DiversityTable, gen_ppl_resamples, mauve_interval, memorisation_table,
                                     percentile_interval, recentred_interval, resample_counts, sample_intervals,
                                     train_ngram_set)
from textdiff.eval.ngrams import diversity, memorisation, ngrams, words


# --------------------------------------------------------------------------- resampling


def test_resample_counts_are_draws_with_replacement():
    w = resample_counts(7, 500, np.random.default_rng(0))
    assert w.shape == (7, 500) and (w.sum(0) == 7).all() and (w >= 0).all()
    assert (w == 0).any() and (w >= 2).any()  # with replacement: some texts left out, some drawn twice
    # each text is drawn Binomial(7, 1/7) times: mean 1
    assert abs(w.mean() - 1) < 0.05
    assert resample_counts(7, 0, np.random.default_rng(0)).shape == (7, 0)


def test_percentile_and_recentred_intervals_by_hand():
    values = np.arange(1, 1002, dtype=float)  # quantiles of 1..1001 fall on the values themselves
    assert percentile_interval(values) == pytest.approx([26.0, 976.0])
    # median 501: spread −475 / +475 put around the point 10, clipped at 0
    assert recentred_interval(values, 10.0) == pytest.approx([10 - 475.0, 10 + 475.0])
    assert recentred_interval(values, 10.0, bounds=(0.0, 1000.0)) == pytest.approx([0.0, 485.0])
    assert percentile_interval(np.array([np.nan] * 6 + [1.0] * 4)) is None  # most resamples undefined


# --------------------------------------------------------------------------- point values and collapse


def _arrays(texts, seed=0):
    rng = np.random.default_rng(seed)
    counts = np.array([len(words(t)) + 1 for t in texts])
    nll = counts * rng.uniform(2, 6, len(texts))
    return nll, counts, rng.uniform(1, 3, len(texts))


def test_all_identical_texts_collapse_every_interval_to_the_point():
    texts = ["the cat sat on the mat today"] * 12
    nll, counts = np.full(12, 17.5), np.full(12, 8)
    ent = np.full(12, 1.7)
    out = sample_intervals(texts, nll, counts, ent, train_grams=train_ngram_set(["the cat sat on the rug"]),
                           resamples=300, seed=0)
    assert out["gen_ppl_ci"] == pytest.approx([math.exp(17.5 / 8)] * 2)
    assert out["entropy_ci"] == pytest.approx([1.7, 1.7])
    assert out["div_ci"] == pytest.approx([diversity(texts)] * 2)
    assert out["mem_ci"] == pytest.approx([memorisation(texts, ["the cat sat on the rug"])] * 2)
    assert out["bootstrap_resamples"] == 300 and out["ci_level"] == 0.95


def test_tables_reproduce_the_point_metrics_on_real_text(review_texts):
    texts, train = review_texts[:150], review_texts[300:1200]
    assert DiversityTable.build(texts).point() == pytest.approx(diversity(texts), rel=1e-12)
    hits, totals = memorisation_table(texts, train_ngram_set(train))
    assert hits.sum() / totals.sum() == pytest.approx(memorisation(texts, train), rel=1e-12)
    nll, counts, _ = _arrays(texts)
    assert gen_ppl_resamples(nll, counts, np.ones((150, 1)))[0] == pytest.approx(math.exp(nll.sum() / counts.sum()))


def test_every_interval_contains_its_point_on_real_text(review_texts):
    texts, train = review_texts[:200], review_texts[300:1200]
    nll, counts, ent = _arrays(texts)
    out = sample_intervals(texts, nll, counts, ent, train_grams=train_ngram_set(train), resamples=400, seed=1)
    points = {"gen_ppl": math.exp(nll.sum() / counts.sum()), "entropy": ent.mean(), "div": diversity(texts),
              "mem": memorisation(texts, train)}
    for name, point in points.items():
        lo, hi = out[f"{name}_ci"]
        assert lo <= point <= hi and hi > lo, (name, lo, point, hi)


def test_seeded_resamples_are_reproducible(review_texts):
    texts = review_texts[:60]
    nll, counts, ent = _arrays(texts)
    a = sample_intervals(texts, nll, counts, ent, resamples=200, seed=3)
    b = sample_intervals(texts, nll, counts, ent, resamples=200, seed=3)
    c = sample_intervals(texts, nll, counts, ent, resamples=200, seed=4)
    assert a == b and a["gen_ppl_ci"] != c["gen_ppl_ci"]


def test_zero_resamples_give_no_intervals(review_texts):
    texts = review_texts[:20]
    nll, counts, ent = _arrays(texts)
    out = sample_intervals(texts, nll, counts, ent, train_grams=set(), resamples=0)
    assert out["gen_ppl_ci"] is None and out["div_ci"] is None and out["mem_ci"] is None
    assert out["bootstrap_resamples"] == 0


# --------------------------------------------------------------------------- closed forms


def test_gen_ppl_is_a_ratio_of_sums_with_the_binomial_interval():
    """Two kinds of text: 5 × (10 nats over 2 tokens), 5 × (10 nats over 10 tokens). A resample holding K
    of the first kind has gen_ppl = exp(100 / (100 − 8K)), K ~ Binomial(10, ½), whose 2.5 % and 97.5 %
    quantiles are 2 and 8 (CDF(1) = 0.011, CDF(2) = 0.055, CDF(7) = 0.945, CDF(8) = 0.989).
    A mean of per-text ratios would give exp(3) = 20.1 as the point and exp(1.8), exp(4.2) as the ends."""
    nll = np.full(10, 10.0)
    counts = np.array([2] * 5 + [10] * 5)
    texts = ["a b c d e"] * 10
    out = sample_intervals(texts, nll, counts, np.zeros(10), resamples=20000, seed=0)
    assert math.exp(nll.sum() / counts.sum()) == pytest.approx(math.exp(100 / 60))
    assert out["gen_ppl_ci"] == pytest.approx([math.exp(100 / 84), math.exp(100 / 36)])
    # the resampled values are exactly f(K)
    w = resample_counts(10, 50, np.random.default_rng(0))
    K = w[:5].sum(0)
    np.testing.assert_allclose(gen_ppl_resamples(nll, counts, w), np.exp(100 / (100 - 8 * K)))


def test_mem_interval_matches_the_binomial_closed_form():
    """4 texts whose one 4-gram is in training, 4 whose one 4-gram is not: the resample's mem is K/8,
    K ~ Binomial(8, ½), quantiles 1 and 7 (CDF(0) = 0.004, CDF(1) = 0.035, CDF(6) = 0.965, CDF(7) = 0.996)."""
    texts = ["w x y z"] * 4 + ["p q r s"] * 4
    out = sample_intervals(texts, np.ones(8), np.ones(8), np.zeros(8), train_grams={("w", "x", "y", "z")},
                           resamples=20000, seed=0)
    assert out["mem_ci"] == pytest.approx([1 / 8, 7 / 8])


def _fresh_copies_div(texts, idx):
    """div of the resample ``idx`` by the rule DiversityTable documents, computed directly: a copy's
    n-grams that no other sample text has are tagged with the copy, so they are new in every copy."""
    tokenised = [words(t) for t in texts]
    score = 1.0
    for n in (2, 3, 4):
        holders = Counter(g for toks in tokenised for g in set(ngrams(toks, n)))
        pooled = []
        for copy, i in enumerate(idx):
            pooled += [(g, copy) if holders[g] == 1 else g for g in ngrams(tokenised[i], n)]
        score *= len(set(pooled)) / len(pooled)
    return score


def test_div_resamples_match_a_direct_enumeration():
    """All 4⁴ = 256 equally likely resamples of 4 texts, computed directly, against the table's values,
    and the exact bootstrap distribution against 20000 random resamples."""
    texts = ["a b c d a b", "a b c e", "x y z w v", "x y z w q q q"]
    table = DiversityTable.build(texts)
    exact = []
    for idx in itertools.product(range(4), repeat=4):
        w = np.bincount(idx, minlength=4)[:, None]
        direct = _fresh_copies_div(texts, idx)
        assert table.resamples(w)[0] == pytest.approx(direct, rel=1e-12), idx
        exact.append(direct)
    assert table.point() == pytest.approx(diversity(texts))
    exact = np.array(exact)
    drawn = table.resamples(resample_counts(4, 20000, np.random.default_rng(0)))
    assert drawn.mean() == pytest.approx(exact.mean(), abs=0.005)
    for v in np.quantile(exact, [0.1, 0.5, 0.9]):
        assert abs(np.mean(drawn <= v + 1e-9) - np.mean(exact <= v + 1e-9)) < 0.015  # atoms: compare with a margin


def test_a_drawn_twice_text_by_hand():
    """No shared n-grams: two copies of one text keep div at 1 (pooling the copies literally would give
    (4/8)(3/6)(2/4) = 1/8). Shared n-grams (ab, bc, abc) count once: 2-grams {ab, bc} + own cd twice over
    6 → 4/6, 3-grams abc + bcd twice over 4 → 3/4, 4-grams abcd twice over 2 → 1."""
    w = np.array([[2], [0]])
    assert DiversityTable.build(["a b c d e", "f g h i j"]).resamples(w)[0] == pytest.approx(1.0)
    assert DiversityTable.build(["a b c d", "a b c e"]).resamples(w)[0] == pytest.approx(4 / 6 * 3 / 4)


# --------------------------------------------------------------------------- MAUVE on real MiniLM features


def test_mauve_interval_on_real_minilm_features(review_texts):
    from textdiff.eval.mauve_score import mauve, mauve_features, mauve_from_features

    real = review_texts[0:160:2][:40]
    refs = review_texts[1:160:2][:40]
    numbers = [f"Invoice {i}: pay {i * 37 % 1000} dollars by March {i % 28 + 1}, account {i * 7919}."
               for i in range(20)]
    mixed = real[:20] + numbers
    p, q = mauve_features(mixed, refs)
    assert p.shape == q.shape == (40, 384)
    point = mauve_from_features(p, q, seed=0)
    assert point == pytest.approx(mauve(mixed, refs, seed=0))  # features once = the old one-shot mauve
    ci, values = mauve_interval(p, q, 40, seed=0, point=point)
    assert len(values) == 40 and np.isfinite(values).all()
    lo, hi = ci
    assert 0 <= lo <= point <= hi <= 1 and hi - lo > 0.01, (lo, point, hi)
    again, _ = mauve_interval(p, q, 40, seed=0, point=point)
    assert again == ci
    assert mauve_interval(p, q, 0, point=point)[0] is None


def test_perplexity_scores_give_the_metrics_and_the_per_text_arrays(tiny_judge, review_texts):
    from textdiff.eval.judge import perplexity_metrics, perplexity_scores
    from textdiff.eval.ngrams import unigram_entropy

    judge = tiny_judge
    texts = review_texts[:5]
    metrics, per_text = perplexity_scores(judge, texts)
    assert metrics == perplexity_metrics(judge, texts)
    nll, counts, ids = judge.score(texts)
    np.testing.assert_allclose(per_text["nll"], nll)
    np.testing.assert_array_equal(per_text["counts"], counts)
    np.testing.assert_allclose(per_text["entropy"], [unigram_entropy(s) for s in ids])
    assert metrics["entropy"] == pytest.approx(per_text["entropy"].mean())


# --------------------------------------------------------------------------- ELBO Monte-Carlo error


class _Tok:
    bos_token_id, eos_token_id = 1, 2

    def __call__(self, texts, add_special_tokens=False):
        return {"input_ids": [[5 + ord(c) % 20 for c in t] for t in texts]}


class _ToyBound(torch.nn.Module):
    """nll_bound with per-draw values Y_ik = μ_i + ε_ik: a fixed table, or Gaussian noise of sd σ."""

    def __init__(self, table=None, sigma=None, mu=20.0):
        super().__init__()
        self.vocab = SimpleNamespace(pad_id=0)
        self.config = SimpleNamespace(seq_len=16)
        self.table, self.sigma, self.mu, self.row = table, sigma, mu, 0

    def nll_bound(self, x0, draws, generator=None, per_draw=False):
        b = x0.shape[0]
        if self.table is not None:
            values = torch.tensor(self.table[self.row:self.row + b], dtype=torch.float64)
            self.row += b
        else:
            values = self.mu + self.sigma * torch.randn(b, draws, generator=generator, dtype=torch.float64)
        bound = values.mean(1)
        return (bound, values) if per_draw else bound


def test_mc_standard_error_by_hand():
    # sequence 1 draws 1, 3 (s² = 2), sequence 2 draws 2, 6 (s² = 8): se = sqrt((2 + 8) / 2) / N
    per_draw = torch.tensor([[1.0, 3.0], [2.0, 6.0]])
    assert mc_standard_error(per_draw, 10) == pytest.approx(math.sqrt(5) / 10)
    assert mc_standard_error(per_draw[:, :1], 10) is None  # one draw: no estimate
    assert ppl_interval(2.0, 0.1) == pytest.approx([math.exp(2 - 1.959964 * 0.1), math.exp(2 + 1.959964 * 0.1)])
    assert ppl_interval(2.0, None) is None


def test_elbo_perplexity_reports_the_hand_standard_error():
    texts = ["abc", "defgh"]  # <bos> + 3 + <eos> and <bos> + 5 + <eos>: 4 + 6 = 10 tokens after <bos>
    model = _ToyBound(table=[[1.0, 3.0], [2.0, 6.0]])
    out = elbo_perplexity(model, _Tok(), texts, device=torch.device("cpu"), batch_size=1, draws=2)
    assert out["heldout_tokens"] == 10
    assert out["heldout_nats_per_token"] == pytest.approx((2 + 4) / 10)
    assert out["heldout_nats_per_token_se_mc"] == pytest.approx(math.sqrt(5) / 10)
    se = math.hypot(out["heldout_nats_per_token_se_data"], math.sqrt(5) / 10)  # the data's error and the draws'
    assert out["heldout_nats_per_token_se"] == pytest.approx(se)
    z = 1.959963984540054
    assert out["heldout_ppl_ci"] == pytest.approx([math.exp(0.6 - z * se), math.exp(0.6 + z * se)])


def test_elbo_standard_error_matches_the_known_variance_and_the_spread_over_seeds():
    """Y_ik = 20 + N(0, σ²): Var(Σ_i Ȳ_i / N) = n·σ²/(D·N²); the reported se estimates it and the
    estimate's spread over 200 seeds agrees."""
    texts = ["ab", "cde", "fghi", "jk", "lmnop", "qr"] * 5  # 30 sequences
    sigma, draws = 3.0, 8
    model = _ToyBound(sigma=sigma)
    runs = [elbo_perplexity(model, _Tok(), texts, device=torch.device("cpu"), batch_size=7, draws=draws, seed=s)
            for s in range(200)]
    n, N = len(texts), runs[0]["heldout_tokens"]
    hand = sigma * math.sqrt(n / draws) / N
    ses = np.array([r["heldout_nats_per_token_se_mc"] for r in runs])
    assert ses.mean() == pytest.approx(hand, rel=0.02)
    assert np.std([r["heldout_nats_per_token"] for r in runs], ddof=1) == pytest.approx(hand, rel=0.15)


def _old_elbo_ppl(model, texts, draws, seed, batch_size):
    """elbo_perplexity's point value as it was computed before the standard error existed."""
    from textdiff.data.batching import encode_sequences, pad_batch

    L = model.config.seq_len
    seqs = encode_sequences(_Tok(), texts, L)
    gen = torch.Generator().manual_seed(seed)
    nll, count = 0.0, 0
    for i in range(0, len(seqs), batch_size):
        batch = pad_batch(seqs[i:i + batch_size], model.vocab.pad_id, length=L)
        nll += model.nll_bound(batch, draws, gen).sum().item()
        count += sum(len(s) - 1 for s in seqs[i:i + batch_size])
    return math.exp(nll / count)


def _tiny_models():
    from tests.test_discrete import tiny
    from tests.test_discrete_families import tiny_d3pm, tiny_sedd

    return {"mdlm": tiny, "d3pm_absorb": lambda: tiny_d3pm("absorbing"), "sedd_uniform": lambda: tiny_sedd("uniform")}


@pytest.mark.parametrize("family", ["mdlm", "d3pm_absorb", "sedd_uniform"])
def test_heldout_ppl_is_unchanged_and_per_draw_values_average_to_the_bound(family):
    make = _tiny_models()[family]
    texts = ["hello world", "abc", "the quick brown", "zz", "a much longer text here", "xyz q"]
    model = make()
    out = elbo_perplexity(model, _Tok(), texts, device=torch.device("cpu"), batch_size=4, draws=5, seed=3)
    assert out["heldout_ppl"] == pytest.approx(_old_elbo_ppl(make(), texts, 5, 3, 4), rel=1e-12)  # summing order
    assert out["heldout_nats_per_token_se"] > out["heldout_nats_per_token_se_mc"] > 0
    lo, hi = out["heldout_ppl_ci"]
    assert lo < out["heldout_ppl"] < hi
    x0 = torch.tensor([[1, 10, 11, 12, 13, 2, 0, 0, 0, 0, 0, 0]] * 3)
    plain = model.nll_bound(x0, 4, torch.Generator().manual_seed(0))
    bound, per_draw = model.nll_bound(x0, 4, torch.Generator().manual_seed(0), per_draw=True)
    assert torch.equal(plain, bound) and per_draw.shape == (3, 4)
    torch.testing.assert_close(per_draw.mean(1), bound.double(), rtol=1e-6, atol=1e-6)


def test_ar_likelihood_is_exact_and_its_interval_is_the_bootstrap_over_sentences(small_tokenizer, review_texts):
    from textdiff.config import BackboneParams
    from textdiff.data.vocab import Vocab
    from textdiff.families import ar

    torch.manual_seed(0)
    model = ar.build_backbone(BackboneParams(d_model=32, n_layers=1, n_heads=2, seq_len=64),
                              Vocab.from_tokenizer(small_tokenizer))
    out = ar.likelihood(model, small_tokenizer, review_texts[:40], device=torch.device("cpu"))
    assert out["heldout_nats_per_token_se_mc"] is None  # exact: no Monte-Carlo error
    assert out["heldout_nats_per_token_se"] == out["heldout_nats_per_token_se_data"] > 0
    lo, hi = out["heldout_ppl_ci"]
    assert lo < out["heldout_ppl"] < hi and "40 held-out sentences" in out["heldout_ppl_ci_kind"]


def test_sentence_bootstrap_se_is_the_delta_method_error_of_a_ratio_of_sums():
    """For R = Σ nll_i / Σ n_i the linearised error is sqrt(Σ (nll_i − R·n_i)²)/Σ n_i (n large); the bootstrap's
    se agrees, and over 300 independent held-out sets its mean matches the spread of R."""
    rng = np.random.default_rng(0)

    def held_out(n):
        tokens = rng.integers(5, 40, n)
        return tokens * 4.0 + rng.normal(0, 1.0, n) * np.sqrt(tokens) * 3 + rng.normal(0, 6, n), tokens

    nll, tokens = held_out(2000)
    R = nll.sum() / tokens.sum()
    delta = math.sqrt(((nll - R * tokens) ** 2).sum()) / tokens.sum()
    se, ci = sentence_bootstrap_se(nll, tokens, resamples=2000, seed=1)
    assert se == pytest.approx(delta, rel=0.06) and ci[0] < R < ci[1]
    sets = [held_out(200) for _ in range(300)]
    ratios = [a.sum() / b.sum() for a, b in sets]
    ses = [sentence_bootstrap_se(a, b, resamples=300, seed=i)[0] for i, (a, b) in enumerate(sets)]
    assert np.mean(ses) == pytest.approx(np.std(ratios, ddof=1), rel=0.12)
    assert sentence_bootstrap_se(nll[:1], tokens[:1]) == (None, None)
    with pytest.raises(ValueError, match="3 per-sentence NLLs but 2 token counts"):
        sentence_bootstrap_se(nll[:3], tokens[:2])


def test_heldout_interval_combines_the_data_and_monte_carlo_errors():
    nll, tokens = np.array([10.0, 14.0, 9.0, 30.0]), np.array([5, 6, 4, 12])
    se_data, _ = sentence_bootstrap_se(nll, tokens)
    out = heldout_interval(nll, tokens, 0.03)
    assert out["heldout_nats_per_token_se"] == pytest.approx(math.hypot(se_data, 0.03))
    assert out["heldout_ppl_ci"] == pytest.approx(ppl_interval(63 / 27, math.hypot(se_data, 0.03)))
    assert heldout_interval(nll, tokens, None)["heldout_nats_per_token_se"] == pytest.approx(se_data)


# --------------------------------------------------------------------------- the evaluate stage's keys


def test_evaluate_stage_writes_intervals_and_the_degenerate_verdict(tmp_path, monkeypatch, review_texts,
                                                                   tiny_judge):
    import stages.evaluate as evaluate
    from textdiff.config import EvaluateParams
    from textdiff.io import write_jsonl

    write_jsonl(tmp_path / "train.jsonl", [{"text": t} for t in review_texts[200:1200]])
    write_jsonl(tmp_path / "test.jsonl", [{"text": t} for t in review_texts[100:200]])
    monkeypatch.setattr(evaluate, "PREPARED", tmp_path)
    monkeypatch.setattr(evaluate, "make_judge", lambda p, device: tiny_judge)  # the judge stage's model, built here
    p = SimpleNamespace(seed=0, evaluate=EvaluateParams(num_references=40, bootstrap=300, mauve_bootstrap=10))
    m = evaluate.text_metrics(review_texts[:40], p, torch.device("cpu"))
    for key in ("gen_ppl", "gen_ppl_sample_mean", "entropy", "div", "mem", "mauve", "mauve_n", "judge"):
        assert key in m
    for key in ("gen_ppl", "entropy", "div", "mem", "mauve"):
        lo, hi = m[f"{key}_ci"]
        assert lo <= m[key] <= hi, key
    assert (m["bootstrap_resamples"], m["mauve_bootstrap_resamples"], m["ci_level"]) == (300, 10, 0.95)
    assert m["degenerate"] is False and m["degenerate_reasons"] == []
    assert m["empty_share"] == 0.0 and m["repeated_token_share"] == 0.0
    assert m["mauve_n"] == 40
    assert m["noise_like_share"] is None  # no noise floor threshold given
    at_rows_n = evaluate.text_metrics(review_texts[:40], p, torch.device("cpu"), mauve_texts=24, noise_threshold="floor")
    assert at_rows_n["mauve_n"] == 24 and at_rows_n["gen_ppl"] == m["gen_ppl"]  # the reference's MAUVE at the rows' n
    assert 0.7 <= at_rows_n["noise_like_share"] <= 0.8  # texts scored as the floor: 3 in 4 at or above its quartile
    assert at_rows_n["noise_like_nats"] > 0
    bad = evaluate.text_metrics(["Innnnnnnnnnnnn"] * 40, p, torch.device("cpu"))
    assert bad["degenerate"] and bad["repeated_token_share"] == 1.0 and bad["div_ci"] is None
    assert EvaluateParams().bootstrap == 1000 and EvaluateParams().mauve_bootstrap == 200
