"""The learned check's parts against hand computations and known identities: the positional unigram (both
footings), the noise floor's draws, the partner-swap and prefix-swap probes (zero for a context-blind predictor,
positive for one that reads its neighbours), the check itself, the verdict that only compares learned rows, and
the training loop's learning-curve points."""

from __future__ import annotations

import math

import pytest
import torch

from textdiff.eval.context_blind import fit_positional_unigram, noise_floor_canvases
from textdiff.eval.context_probe import length_partners, partner_swap, prefix_swap
from textdiff.report.learned import describe, first_passed, learned_check

PAD, BOS, EOS = 0, 1, 2


# --------------------------------------------------------------------------- the positional unigram


def test_positional_unigram_by_hand_on_the_tokens_footing():
    """Two training canvases, V = 4 (pad 0, bos 1, eos 2, word 3), one smoothing strength k = 1.

    Real-token counts: position 1: word ×2; position 2: eos ×1, word ×1; position 3: eos ×1.
    Global real-token distribution, add-½ over the three non-pad ids: bos 0.5, eos 2.5, word 3.5 of 6.5.
    p_1(word) = (2 + 3.5/6.5)/(2 + 1); p_2(eos) = (1 + 2.5/6.5)/(2 + 1)."""
    train = torch.tensor([[BOS, 3, EOS, PAD], [BOS, 3, 3, EOS]])
    held_out = torch.tensor([[BOS, 3, EOS, PAD]])
    model = fit_positional_unigram(train, train, 4, PAD, "tokens", grid=(1,))
    p1, p2 = (2 + 3.5 / 6.5) / 3, (1 + 2.5 / 6.5) / 3
    expected = -(math.log(p1) + math.log(p2))
    assert model.sequence_nll(held_out, PAD).item() == pytest.approx(expected)
    assert model.nats_per_token(held_out, PAD) == pytest.approx(expected / 2)  # tokens after <bos>: word, eos


def test_the_canvas_footing_pays_for_padding_with_the_share_of_sentences_that_ended():
    """Position 3: one of the two training canvases is pad there: p_3(pad) = (1 + ½)/(2 + 1) = ½."""
    train = torch.tensor([[BOS, 3, EOS, PAD], [BOS, 3, 3, EOS]])
    model = fit_positional_unigram(train, train, 4, PAD, "canvas", grid=(1,))
    assert model.log_probs[3, PAD].exp().item() == pytest.approx(0.5)
    assert torch.allclose(model.log_probs.exp().sum(1), torch.ones(4, dtype=torch.float64))
    held_out = torch.tensor([[BOS, 3, EOS, PAD]])
    tokens = fit_positional_unigram(train, train, 4, PAD, "tokens", grid=(1,))
    gap = model.sequence_nll(held_out, PAD) - tokens.sequence_nll(held_out, PAD)
    # the canvas footing also pays −log p_3(pad) and −log(1 − p_i(pad)) at the real positions 1 and 2
    p_pad = model.log_probs[:, PAD].exp()
    assert gap.item() == pytest.approx(-math.log(0.5) - math.log(1 - p_pad[1]) - math.log(1 - p_pad[2]))


def test_the_smoothing_is_chosen_per_position_on_the_validation_split():
    """Position 1 always holds token 3 (a small k wins); later positions draw uniformly from 37 tokens, and 100
    training sentences leave many of them unseen at a position (a large k, toward the global counts, wins)."""
    g = torch.Generator().manual_seed(0)
    def corpus(n):
        x = torch.randint(3, 40, (n, 6), generator=g)
        x[:, 0], x[:, 1] = BOS, 3
        return x
    model = fit_positional_unigram(corpus(100), corpus(400), 40, PAD, "tokens", grid=(1, 10000))
    assert model.smoothing[1] == 1 and model.smoothing[3] == 10000
    assert model.log_probs[1, 3].exp().item() > 0.99


def test_noise_floor_draws_follow_the_table():
    train = torch.tensor([[BOS, 3, EOS, PAD]] * 3 + [[BOS, 4, 3, EOS]])
    model = fit_positional_unigram(train, train, 5, PAD, "canvas", grid=(1,))
    drawn = noise_floor_canvases(model, 20000, BOS, torch.Generator().manual_seed(0))
    assert (drawn[:, 0] == BOS).all() and drawn.shape == (20000, 4)
    for position in (1, 2, 3):
        freq = torch.bincount(drawn[:, position], minlength=5).double() / 20000
        assert torch.allclose(freq, model.log_probs[position].exp(), atol=0.015), position


# --------------------------------------------------------------------------- the probes

V = 12


def copy_language(n: int, length: int, seed: int) -> torch.Tensor:
    """Canvases <bos> a a a … <eos> <pad>: every word is the sentence's one word (3..V-1)."""
    g = torch.Generator().manual_seed(seed)
    words = torch.randint(3, V, (n, 1), generator=g)
    x = torch.full((n, length + 3), PAD)
    x[:, 0] = BOS
    x[:, 1:length + 1] = words
    x[:, length + 1] = EOS
    return x


def reads_neighbours(x_t: torch.Tensor, share: float) -> torch.Tensor:
    """A predictor that knows the language: the most common real word it can see, else uniform over words."""
    words = (x_t >= 3) & (x_t < V)
    counts = torch.nn.functional.one_hot(torch.where(words, x_t, 0), V).mul(words[..., None]).sum(1)
    guess = counts.argmax(-1)
    seen = counts.sum(-1) > 0
    logits = torch.full((*x_t.shape, V), -20.0)
    logits[..., 3:] = 0.0
    logits[seen] = logits[seen].scatter(-1, guess[seen][:, None, None].expand(-1, x_t.shape[1], 1), 10.0)
    return torch.log_softmax(logits, -1)


def blind(x_t: torch.Tensor, share: float) -> torch.Tensor:
    return torch.log_softmax(torch.zeros((*x_t.shape, V)), -1)


def uniform_noise(x: torch.Tensor, g) -> torch.Tensor:
    return torch.full_like(x, V)  # a token no predictor reads as a word (the test's [MASK])


def test_length_partners_pair_sentences_of_equal_length():
    x = torch.cat([copy_language(3, 4, 0), copy_language(1, 5, 1)[:, :7]])
    assert length_partners(x, PAD).tolist() == [1, 2, 0, 3]  # the lone length-5 canvas is its own partner


def test_partner_swap_is_zero_for_a_context_blind_predictor_and_large_for_one_that_reads():
    x = copy_language(64, 6, 0)
    protect = torch.tensor([True] + [False] * 6 + [True, True])  # <bos>; <eos> at 7, which the predictor never says
    kw = dict(noise=uniform_noise, share=0.5, protect=protect)
    blind_swap = partner_swap(blind, x, PAD, generator=torch.Generator().manual_seed(0), **kw)
    reading = partner_swap(reads_neighbours, x, PAD, generator=torch.Generator().manual_seed(0), **kw)
    assert blind_swap["rise"] == pytest.approx(0.0, abs=1e-9)
    assert blind_swap["own"] == pytest.approx(math.log(V), rel=1e-6)
    assert reading["own"] < 0.1 and reading["rise"] > 5.0, reading
    assert reading["sentences"] == 64 and reading["tokens"] > 64


def test_prefix_swap_is_zero_for_a_context_blind_predictor_and_large_for_one_that_reads():
    x = copy_language(32, 6, 1)

    def next_reads(x_in):  # log p(x_{i+1} | x_≤i): the last word seen so far, <eos> after six words
        out = reads_neighbours(torch.where(torch.arange(x_in.shape[1]) <= 0, PAD, x_in), 0.5)
        return out

    assert prefix_swap(lambda x_in: blind(x_in, 0.5), x, PAD)["rise"] == pytest.approx(0.0, abs=1e-9)
    assert prefix_swap(next_reads, x, PAD)["rise"] > 1.0


# --------------------------------------------------------------------------- the check


def row(margin=0.8, probe=("masked_nll_by_share", "absorbing", 1.7), gen_ppl=(100, 90, 110), mauve=(0.5, 0.4, 0.6),
        degenerate=False):
    return {"context_blind_margin": margin, "context_probe": {"probe": probe[0], "graph": probe[1], "value": probe[2]},
            "gen_ppl": gen_ppl[0], "gen_ppl_ci": list(gen_ppl[1:]), "mauve": mauve[0], "mauve_ci": list(mauve[1:]),
            "degenerate": degenerate}


FLOOR = {"gen_ppl": 4000, "gen_ppl_ci": [3500, 4500], "mauve": 0.01, "mauve_ci": [0.005, 0.02]}


def test_a_row_that_clears_every_bar_has_learned_and_names_its_tightest_check():
    check = learned_check(row(), FLOOR)
    assert check["learned"] and not check["no_signal"]
    assert check["deciding"] == "masked NLL drop, 5% vs 100% masked 1.7 ≥ 1.5 nats"  # 1.7/1.5 < 0.8/0.5


@pytest.mark.parametrize("kwargs,words", [
    ({"margin": 0.45}, "below the positional unigram 0.45 < 0.5"),
    ({"probe": ("masked_nll_by_share", "absorbing", 0.4)}, "masked NLL drop, 5% vs 100% masked 0.4 < 1.5"),
    ({"margin": 0.2, "probe": ("partner_swap", "uniform", 0.6)}, "0.2 < 0.25"),
    ({"margin": 0.9, "probe": ("prefix_swap", "causal", 0.6)}, "0.9 < 1"),
    ({"margin": 0.45, "probe": ("prefix_swap", "causal", 0.6)}, "0.45 < 1"),
    ({"degenerate": True}, "samples not degenerate: no"),
])
def test_each_failed_bar_is_named_with_its_number(kwargs, words):
    check = learned_check(row(**kwargs), FLOOR)
    assert not check["learned"] and words in check["deciding"], check["deciding"]


def test_the_ar_prefix_swap_is_reported_but_does_not_decide():
    check = learned_check(row(margin=1.27, probe=("prefix_swap", "causal", 0.2)), FLOOR)
    assert check["learned"], check
    assert any("0.2 nats (reported, not a gate)" in describe(c) for c in check["checks"])


def test_samples_whose_interval_reaches_the_floor_have_no_signal():
    check = learned_check(row(mauve=(0.03, 0.01, 0.06)), FLOOR)
    assert not check["learned"] and check["no_signal"]
    assert "mauve 0.03 vs floor 0.01 (interval not wholly above the floor's)" in check["deciding"]
    assert not learned_check(row(), None)["learned"]  # no floor scored: nothing shows a signal
    worse = learned_check(row(gen_ppl=(9000, 8000, 10000), mauve=(0.002, 0.001, 0.003)), FLOOR)
    assert worse["no_signal"] and not worse["learned"]  # apart from the floor, but on its worse side
    assert all(not c["passed"] for c in worse["checks"] if "floor" in c["check"])
    spaces_rows = learned_check(row(), FLOOR, autoencoder={"row": "ar", "autoencoder": None, "why": "none"})
    assert [c["check"] for c in spaces_rows["checks"] if "autoencoder" in c["check"]] == []


def test_the_spaces_rows_answer_for_their_autoencoder_and_decoder():
    samples = {k: v for k, v in row().items() if not k.startswith("context")}
    weak_ae = learned_check(samples, FLOOR, autoencoder={"held_out": {"token_accuracy": 0.037}})
    assert not weak_ae["learned"] and "autoencoder held-out token accuracy 0.037 < 0.6" in weak_ae["deciding"]
    decoder = {"held_out": [{"t": 0.0, "token_accuracy": 0.95}, {"t": 0.05, "token_accuracy": 0.7}]}
    assert learned_check(samples, FLOOR, decoder=decoder)["learned"]
    decoder["held_out"][0]["token_accuracy"] = 0.863
    assert "decoder token accuracy at t = 0 0.863 < 0.9" in learned_check(samples, FLOOR, decoder=decoder)["deciding"]


def test_first_passed_is_the_compute_from_which_every_point_passes():
    def pt(flops, margin, probe):
        return {"flops": flops, "context_blind_margin": margin, "probe_value": probe, "graph": "absorbing",
                "probe": "masked_nll_by_share"}
    assert first_passed([pt(1, 0.6, 1.6), pt(2, 0.4, 1.6), pt(4, 0.6, 1.6), pt(8, 0.7, 1.9)]) == 4
    assert first_passed([pt(1, 0.6, 1.6), pt(2, 0.6, 1.0)]) is None


# --------------------------------------------------------------------------- the verdict


def test_a_claim_on_a_row_that_has_not_learned_is_inconclusive_and_says_why():
    from textdiff.report.verdict import check, rank_tiers

    good = {**row(), "heldout_ppl": 100.0, "heldout_ppl_ci": [95.0, 105.0]}
    bad = {**row(margin=0.1), "heldout_ppl": 300.0, "heldout_ppl_ci": [290.0, 310.0]}
    rows = {name: {**r, "learned_check": learned_check(r, FLOOR)} for name, r in (("a", good), ("b", bad))}
    outcome, numbers = check({"a": "a", "b": "b", "metric": "heldout_ppl", "relation": "lower"}, rows, {})
    assert outcome == "inconclusive" and "`b` has not learned (nats/token below the positional unigram 0.1" in numbers
    assert rank_tiers(rows) == [["a"]]


def test_refuting_a_likelihood_order_needs_the_same_order_at_an_earlier_budget():
    from textdiff.report.verdict import check

    def curve(half):
        return [{"flops": 1.0, "heldout_nats": half}, {"flops": 2.0, "heldout_nats": 5.0}]

    a = {**row(), "heldout_ppl": 300.0, "heldout_ppl_ci": [290.0, 310.0], "learning_curve": curve(6.0)}
    b = {**row(), "heldout_ppl": 100.0, "heldout_ppl_ci": [95.0, 105.0], "learning_curve": curve(5.5)}
    spec = {"a": "a", "b": "b", "metric": "heldout_ppl", "relation": "lower"}
    rows = {name: {**r, "learned_check": learned_check(r, FLOOR)} for name, r in (("a", a), ("b", b))}
    assert check(spec, rows, {})[0] == "refuted"
    rows["b"]["learning_curve"] = curve(6.5)  # a was ahead at half the budget
    outcome, numbers = check(spec, rows, {})
    assert outcome == "inconclusive" and "differs at half the budget" in numbers
    rows["b"]["learning_curve"] = []
    assert check(spec, rows, {})[0] == "inconclusive"


# --------------------------------------------------------------------------- the loop's learning curve


def test_curve_points_are_measured_at_the_fractions_and_leave_training_unchanged():
    from tests.test_ar import VOCAB, tiny_model, toy_batches
    from textdiff.config import TrainParams
    from textdiff.families import ar
    from textdiff.training.loop import train

    cfg = TrainParams(steps=16, lr=3e-3, warmup_steps=2, log_every=4)
    seen = []

    def probe(model):
        seen.append(model.training)
        torch.rand(1000)  # a probe's own random draws must not move training's
        return {"figure": float(len(seen))}

    weights = []
    for curve_probe in (None, probe):
        torch.manual_seed(0)
        model = tiny_model()
        result = train(model, lambda m, b: ar.training_loss(m, b, VOCAB), toy_batches, cfg, device=torch.device("cpu"),
                       checkpoint_dir=None, fingerprint="t", progress=False, curve_probe=curve_probe,
                       curve_at=(0.125, 0.5, 1.0))
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert [q["step"] for q in result.curve] == [2, 8, 16] and seen == [False, False, False]
    assert [q["figure"] for q in result.curve] == [1.0, 2.0, 3.0]
    assert torch.equal(weights[0], weights[1])


def test_auto_precision_measures_and_says_why():
    from textdiff.training.peak import choose_cpu_precision, resolve_precision

    choice, why = choose_cpu_precision(shape=(256, 64, 256))
    assert choice in ("fp32", "bf16") and "GFLOP/s" in why and why.endswith(choice)
    assert resolve_precision(torch.device("cpu"), "bf16") == ("bf16", "set by train.precision")
