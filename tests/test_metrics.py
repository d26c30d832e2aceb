import math

import numpy as np
import pytest
import torch

from textdiff.eval.judge import HFJudge, perplexity_metrics
from textdiff.eval.mauve_score import mauve, sentence_features
from textdiff.eval.ngrams import diversity, memorisation, unigram_entropy, words


def test_words_split_punctuation():
    assert words("It's great, really!") == ["It", "'", "s", "great", ",", "really", "!"]


def test_diversity_by_hand():
    # "a b a b": 2-grams ab, ba, ab -> 2/3 unique; 3-grams aba, bab -> 1; 4-grams abab -> 1
    assert math.isclose(diversity(["a b a b"]), 2 / 3)
    # pooled: "a b c" twice -> 2-grams 2/4, 3-grams 1/2, no 4-grams -> nan
    assert math.isnan(diversity(["a b c", "a b c"]))
    two = ["a b c d", "a b c e"]  # 2-grams ab,bc,cd,ab,bc,ce: 4/6; 3-grams abc,bcd,abc,bce: 3/4; 4-grams 2/2
    assert math.isclose(diversity(two), (4 / 6) * (3 / 4) * 1.0)


def test_memorisation_by_hand():
    train = ["the cat sat on the mat"]
    # generated 4-grams: (the cat sat on) in, (cat sat on a) out, (sat on a mat) out
    assert math.isclose(memorisation(["the cat sat on a mat"], train), 1 / 3)
    assert memorisation(["the cat sat on the mat", "the cat sat on the mat"], train) == 1.0
    assert memorisation(["nothing like it at all"], train) == 0.0


def test_unigram_entropy_by_hand():
    assert unigram_entropy([1, 1, 1]) == 0.0
    assert math.isclose(unigram_entropy([1, 2, 3, 4]), math.log(4))
    assert math.isclose(unigram_entropy([1, 1, 2, 2]), math.log(2))


def test_mauve_on_real_minilm_features(review_texts):
    feats = sentence_features(review_texts[:4])
    assert feats.shape == (4, 384) and np.allclose(np.linalg.norm(feats, axis=1), 1, atol=1e-4)
    a, b = review_texts[0:300:2], review_texts[1:300:2]  # the corpus is ordered by movie: interleave
    numbers = [f"Invoice {i}: pay {i * 37 % 1000} dollars by March {i % 28 + 1}, account {i * 7919}." for i in range(150)]
    same = mauve(a, b)
    different = mauve(a, numbers)
    assert same > 0.8, same
    assert different < 0.2, different
    with pytest.raises(ValueError, match="at least 2"):
        mauve(a[:1], b)


def test_gen_ppl_token_weighted_and_per_sample(tiny_judge, small_tokenizer, review_texts):
    judge = tiny_judge
    texts = review_texts[:5]
    nll, counts, _ = judge.score(texts)
    m = perplexity_metrics(judge, texts)
    assert math.isclose(m["gen_ppl"], math.exp(nll.sum() / counts.sum()), rel_tol=1e-9)
    assert math.isclose(m["gen_ppl_sample_mean"], float(np.mean(np.exp(nll / counts))), rel_tol=1e-9)
    # an untrained model is close to uniform over the vocabulary
    assert abs(math.log(m["gen_ppl"]) - math.log(len(small_tokenizer))) < 0.5
    same = perplexity_metrics(judge, [texts[0]] * 3)
    assert math.isclose(same["gen_ppl"], same["gen_ppl_sample_mean"], rel_tol=1e-6)


def test_hf_causal_lm_judge_from_a_local_path(small_tokenizer, tmp_path, review_texts):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(small_tokenizer), n_positions=64, n_embd=32, n_layer=1, n_head=2,
                     bos_token_id=small_tokenizer.bos_token_id, eos_token_id=small_tokenizer.eos_token_id)
    GPT2LMHeadModel(cfg).save_pretrained(str(tmp_path))
    small_tokenizer.save_pretrained(str(tmp_path))
    judge = HFJudge(tmp_path, torch.device("cpu"), batch_size=2)
    texts = review_texts[:3]
    nll, counts, _ = judge.score(texts)
    model = GPT2LMHeadModel.from_pretrained(str(tmp_path)).eval()
    ids = torch.tensor([[small_tokenizer.bos_token_id] + small_tokenizer(texts[0])["input_ids"]
                        + [small_tokenizer.eos_token_id]])
    with torch.no_grad():
        mean_loss = model(input_ids=ids, labels=ids).loss.item()
    assert counts[0] == ids.shape[1] - 1
    assert math.isclose(nll[0], mean_loss * counts[0], rel_tol=1e-4)
