"""Latent spaces: the PLANNER and LD4LG autoencoders, their decoder with the KV cache, the latent
dataset and the latent diffusion family."""

import math

import pytest
import torch

from textdiff.config import (BackboneParams, CompressorParams, LatentParams, LatentSpaceParams, ParamsError, TrainParams,
                             parse_params)
from textdiff.data.vocab import Vocab
from textdiff.eval.bleu import corpus_bleu
from textdiff.families.latent import LatentDiffusion
from textdiff.nn import BackboneConfig, Transformer
from textdiff.spaces.autoencoders.compressors import (PerceiverCompressor, PlannerPooling, gaussian_kl, l2_scaled,
                                                      reparameterise)
from textdiff.spaces.autoencoders.decoding import beam_search, sample_tokens
from textdiff.spaces.autoencoders.evaluation import interpolation, reconstruction, token_accuracy
from textdiff.spaces.autoencoders.latents import LatentCache, encode_all
from textdiff.spaces.autoencoders.model import (SentenceData, fit_autoencoder, load_autoencoder, save_autoencoder)

CPU = torch.device("cpu")
SMALL = CompressorParams(d_model=32, n_layers=2, n_heads=2)


def space(variant: str, steps: int = 150) -> LatentSpaceParams:
    return LatentSpaceParams(autoencoder=variant, num_latents=4, latent_dim=16, max_length=40,
                             compressor=CompressorParams(d_model=32, n_layers=1, n_heads=2),
                             decoder=BackboneParams(d_model=32, n_layers=1, n_heads=2, seq_len=48),
                             train=TrainParams(steps=steps, batch_size=6, lr=3e-3, warmup_steps=10, weight_decay=0.0,
                                               log_every=50, checkpoint_every=1000))


def features(batch=3, length=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    padding = torch.zeros(batch, length, dtype=torch.bool)
    padding[1, 5:] = True
    return torch.randn(batch, length, 384, generator=g), padding


# --------------------------------------------------------------------------- compressors


def test_compressors_give_the_latent_shape_and_ignore_padding():
    torch.manual_seed(0)
    x, padding = features()
    planner, ld4lg = PlannerPooling(SMALL, 384, 5, 12).eval(), PerceiverCompressor(SMALL, 384, 5, 12).eval()
    mean, logvar = planner(x, padding)
    assert mean.shape == logvar.shape == (3, 5, 12)
    assert ld4lg(x, padding).shape == (3, 5, 12)
    changed = x.clone()
    changed[1, 5:] = 100.0  # only padded positions of row 1
    torch.testing.assert_close(planner(changed, padding)[0], mean)
    torch.testing.assert_close(ld4lg(changed, padding), ld4lg(x, padding))
    assert not torch.allclose(ld4lg(changed, torch.zeros_like(padding))[1], ld4lg(x, padding)[1])


def test_kl_is_zero_when_the_posterior_is_the_prior_and_matches_torch_distributions():
    zeros = torch.zeros(2, 4, 8)
    assert torch.equal(gaussian_kl(zeros, zeros), torch.zeros(2))
    g = torch.Generator().manual_seed(1)
    mean, logvar = torch.randn(2, 4, 8, generator=g), torch.randn(2, 4, 8, generator=g)
    q = torch.distributions.Normal(mean, (0.5 * logvar).exp())
    expected = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).flatten(1).sum(1)
    torch.testing.assert_close(gaussian_kl(mean, logvar), expected)
    # by hand: mean 1, variance 1 gives ½ per coordinate
    assert gaussian_kl(torch.ones(1, 1, 3), torch.zeros(1, 1, 3)).item() == pytest.approx(1.5)


def test_reparameterised_samples_have_the_posterior_moments():
    mean, logvar = torch.full((200_000,), 2.0), torch.full((200_000,), math.log(0.25))
    z = reparameterise(mean, logvar, torch.Generator().manual_seed(0))
    assert z.mean().item() == pytest.approx(2.0, abs=0.01)
    assert z.std().item() == pytest.approx(0.5, abs=0.01)


def test_ld4lg_latents_have_norm_sqrt_dim():
    torch.manual_seed(0)
    x, padding = features()
    z = PerceiverCompressor(SMALL, 384, 5, 12)(x, padding)
    torch.testing.assert_close(z.norm(dim=-1), torch.full((3, 5), math.sqrt(12)))
    torch.testing.assert_close(l2_scaled(torch.tensor([[3.0, 4.0]])), torch.tensor([[0.6, 0.8]]) * math.sqrt(2))


# --------------------------------------------------------------------------- the decoder and its KV cache


VOCAB = Vocab(size=50, pad_id=0, bos_id=1, eos_id=2)


def cross_decoder(seed=0) -> Transformer:
    torch.manual_seed(seed)
    return Transformer(BackboneConfig(d_model=32, n_layers=2, n_heads=4, max_len=16, causal=True, vocab_size=50,
                                      cross_dim=12)).eval()


def test_decoder_with_the_kv_cache_equals_the_decoder_without_it():
    decoder, memory = cross_decoder(), torch.randn(3, 5, 12)
    tokens = torch.randint(3, 50, (3, 10))
    full = decoder(tokens, memory=memory)
    cache = decoder.new_cache(3)
    steps = [decoder(tokens[:, :4], cache=cache, memory=memory)]  # prefill, then one token at a time
    steps += [decoder(tokens[:, i:i + 1], cache=cache, memory=memory) for i in range(4, 10)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="memory"):
        decoder(tokens)
    for kwargs in ({"greedy": True}, {"top_p": 0.9}):
        with_cache = sample_tokens(decoder, memory, VOCAB, generator=torch.Generator().manual_seed(3), **kwargs)
        without = sample_tokens(decoder, memory, VOCAB, generator=torch.Generator().manual_seed(3), use_cache=False,
                                **kwargs)
        assert with_cache == without


def test_the_decoder_reads_the_memory():
    decoder, tokens = cross_decoder(), torch.randint(3, 50, (2, 6))
    assert not torch.allclose(decoder(tokens, memory=torch.randn(2, 5, 12)), decoder(tokens, memory=torch.randn(2, 5, 12)))


def test_beam_of_one_is_greedy_and_wider_beams_score_at_least_as_well():
    decoder, memory = cross_decoder(seed=2), torch.randn(4, 5, 12) * 3
    greedy = sample_tokens(decoder, memory, VOCAB, greedy=True)
    assert beam_search(decoder, memory, VOCAB, beam_size=1, length_penalty=0.0) == greedy

    def log_prob(seqs):
        out = []
        for i, s in enumerate(seqs):
            ids = torch.tensor([[VOCAB.bos_id] + s + [VOCAB.eos_id]])[:, :decoder.cfg.max_len]
            logp = decoder(ids[:, :-1], memory=memory[i:i + 1]).log_softmax(-1)
            out.append(logp.gather(-1, ids[:, 1:, None]).sum().item())
        return torch.tensor(out)

    beams = beam_search(decoder, memory, VOCAB, beam_size=8, length_penalty=0.0)
    # with no length normalisation a beam keeps the best prefixes, so on this toy model it finds sequences at
    # least as likely as greedy's (not a theorem for every model, but it holds here and breaks if scoring breaks)
    assert (log_prob(beams) >= log_prob(greedy) - 1e-4).all()


# --------------------------------------------------------------------------- metrics


def test_bleu_and_token_accuracy_against_hand_computations():
    # p1 = 5/6, p2 = 3/5, p3 = 2/4, p4 = 1/3, equal lengths: BLEU = (1/12)^(1/4)
    assert corpus_bleu(["the cat sat on the mat"], ["the cat sat on a mat"]) == pytest.approx(100 * (1 / 12) ** 0.25)
    assert corpus_bleu(["a b c d e"], ["a b c d e"]) == pytest.approx(100.0)
    # a hypothesis of 4 words against a reference of 5 with every n-gram right: only the brevity penalty
    assert corpus_bleu(["a b c d"], ["a b c d e"]) == pytest.approx(100 * math.exp(1 - 5 / 4))
    assert corpus_bleu(["x y z w"], ["a b c d"]) == 0.0
    # reference [5, 6, 7] + <eos>: [5, 6] + <eos> matches 2 of 4 positions; an exact copy 4 of 4
    assert token_accuracy([[5, 6], [5, 6, 7]], [[5, 6, 7], [5, 6, 7]]) == pytest.approx(6 / 8)


# --------------------------------------------------------------------------- a tiny autoencoder on real MiniLM encodings


@pytest.fixture(scope="module", params=["planner", "ld4lg"])
def overfit(request, review_texts, small_tokenizer):
    texts = review_texts[100:106]
    params = space(request.param)
    data = SentenceData.build(texts, small_tokenizer, params, CPU)
    model, _ = fit_autoencoder(params, data, Vocab.from_tokenizer(small_tokenizer), seed=0, device=CPU, progress=False)
    return model, data, texts


def test_a_tiny_autoencoder_overfits_a_few_sentences_to_exact_reconstruction(overfit, small_tokenizer):
    model, data, texts = overfit
    for method in ("greedy", "beam"):
        result = reconstruction(model, data, small_tokenizer, method=method, beam_size=3)
        assert result["exact_match"] == 1.0, result["examples"]
        assert result["token_accuracy"] == 1.0 and result["bleu"] == pytest.approx(100.0)
    steps = interpolation(model, data, small_tokenizer, (0, 1))
    assert [s["lambda"] for s in steps] == [0.0, 0.25, 0.5, 0.75, 1.0]
    decoded_ends = [steps[0]["text"], steps[-1]["text"]]
    assert decoded_ends == small_tokenizer.batch_decode(
        [model.vocab.strip(data.tokens[i]) for i in (0, 1)], skip_special_tokens=True)


def test_the_latent_cache_equals_fresh_encoding(overfit, small_tokenizer, tmp_path):
    model, data, _ = overfit
    save_autoencoder(tmp_path / "ae", model)
    loaded = load_autoencoder(tmp_path / "ae")
    cache = LatentCache.of(encode_all(loaded, data, batch_size=4, device=CPU), model.params.autoencoder)
    cache.save(tmp_path / "data")
    stored = LatentCache.load(tmp_path / "data")
    with torch.no_grad():
        for i in range(len(data)):  # each sentence alone: no padding, no batch neighbours
            torch.testing.assert_close(stored.latents[i], model.encode(data.batch([i]))[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(stored.to_latents(stored.standardised(list(range(len(data))))), stored.latents,
                               atol=1e-5, rtol=1e-5)
    flat = stored.latents.reshape(-1, stored.latents.shape[-1]).double()
    torch.testing.assert_close(stored.std.double(), flat.std(0).clamp_min(1e-6), rtol=1e-5, atol=1e-6)


def test_autoencoder_training_resumes_to_the_same_weights(overfit, small_tokenizer, tmp_path):
    _, data, _ = overfit
    params, vocab = space("planner", steps=12), Vocab.from_tokenizer(small_tokenizer)
    params.train.checkpoint_every = 4
    run = dict(seed=0, device=CPU, progress=False, fingerprint="ae")
    straight, _ = fit_autoencoder(params, data, vocab, **run)
    fit_autoencoder(params, data, vocab, checkpoint_dir=tmp_path, stop_after=6, **run)  # killed after step 6
    resumed, result = fit_autoencoder(params, data, vocab, checkpoint_dir=tmp_path, **run)
    assert result.resumed_from == 4 and result.steps == 12
    for name, value in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], value, msg=name)


# --------------------------------------------------------------------------- latent diffusion


def test_latent_diffusion_loss_starts_near_the_v_target_variance():
    """v = √ᾱ·ε − √(1−ᾱ)·x0 has unit variance for standardised x0, and the untrained output is near 0."""
    params = LatentParams(space=LatentSpaceParams(num_latents=4, latent_dim=16),
                          model={"d_model": 32, "n_layers": 2, "n_heads": 2, "seq_len": 4})
    torch.manual_seed(0)
    model = LatentDiffusion(params.model, params.space.latent_dim)
    assert model.config.diffusion.parametrisation == "v" and model.process.schedule == "cosine"
    x0 = torch.randn(256, 4, 16)
    assert model.loss(x0).item() == pytest.approx(1.0, rel=0.15)
    assert model.predict_x0(x0, torch.full((256,), 0.5, dtype=torch.float64), None).shape == x0.shape


def test_the_denoiser_canvas_must_be_the_latents():
    with pytest.raises(ParamsError, match="model.seq_len .* space.num_latents"):
        parse_params({"rows": {"latent_ld4lg": {"family": "latent", "space": {"num_latents": 8},
                                                "model": {"seq_len": 16}}}})
