"""Diffusion-LM embedding diffusion: loss branches, and a tiny model that regenerates its data."""

import math

import pytest
import torch

from textdiff.config import EmbeddingParams
from textdiff.data.batching import encode_sequences, pad_batch
from textdiff.data.tokenizer import train_tokenizer
from textdiff.data.vocab import Vocab
from textdiff.families import embedding as E
from textdiff.families.contract import RunContext
from textdiff.sampling.gaussian_sampler import sampler_config
from textdiff.training.loop import train

SENTENCES = ["A three-hour cinema master class.", "These are textbook lives of quiet desperation.",
             "A gorgeous, witty, seductive movie.", "The plot is nothing but boilerplate cliches.",
             "Too bad the script is so thin.", "An utterly charming and hilarious film.",
             "It never finds its footing.", "A solid cast carries the weak story."]


def tiny_params(**over) -> EmbeddingParams:
    raw = {"model": {"d_model": 64, "n_layers": 2, "n_heads": 4, "seq_len": 20, "embedding_dim": 16,
                     "diffusion": {"num_train_timesteps": 200}}, "train": {"steps": 600, "batch_size": 16, "lr": 3e-3, "warmup_steps": 20},
           "sample": {"num_samples": 32, "batch_size": 32, "steps": 50}}
    for key, value in over.items():
        raw[key] = {**raw.get(key, {}), **value}
    return EmbeddingParams.model_validate(raw)


@pytest.fixture(scope="module")
def eight():
    tok = train_tokenizer(SENTENCES * 20, vocab_size=400, min_frequency=1)
    vocab = Vocab.from_tokenizer(tok)
    seqs = encode_sequences(tok, SENTENCES, 20)
    assert max(len(s) for s in seqs) < 20 and all(s[-1] == vocab.eos_id for s in seqs)
    return tok, vocab, pad_batch(seqs, vocab.pad_id, 20)


@pytest.fixture(scope="module")
def trained(eight):
    tok, vocab, batch = eight
    params = tiny_params()
    torch.manual_seed(0)
    model = E.build(params, vocab)
    train(model, lambda m, b: m.loss(b), lambda step: batch.repeat(2, 1), params.train, checkpoint_dir=None,
          fingerprint="x", device=torch.device("cpu"), progress=False)
    return model.eval()


def test_loss_terms_at_initialisation(eight):
    tok, vocab, batch = eight
    torch.manual_seed(0)
    model = E.build(tiny_params(), vocab)
    with torch.no_grad():
        rounding = torch.nn.functional.cross_entropy(model.logits(model.embedding(batch)).reshape(-1, vocab.size),
                                                     batch.reshape(-1))
        loss = model.loss(batch)
    assert torch.isfinite(loss)
    # N(0,1) embeddings of dim 16: a token is far nearer itself than others, so rounding CE starts small
    assert rounding < 0.5 * math.log(vocab.size)
    # the x0-MSE of an untrained (near-zero output) denoiser is about E‖x0‖²/D ≈ 1
    assert 0.5 < loss.item() < 3.0


@pytest.mark.parametrize("probability", [1.0, 0.0])
def test_both_self_conditioning_branches_get_the_gradients_they_should(eight, probability):
    tok, vocab, batch = eight
    torch.manual_seed(0)
    model = E.build(tiny_params(), vocab)  # built with p = 0.5: has the self-conditioning input
    with torch.no_grad():
        model.denoiser.self_cond_proj.weight.normal_(std=0.02)
    model.config.diffusion.self_condition = probability
    model.loss(batch).backward()
    sc_grad = model.denoiser.self_cond_proj.weight.grad
    assert model.embedding.weight.grad.abs().sum() > 0
    assert model.denoiser.blocks[0].modulation.weight.grad.abs().sum() > 0  # adaLN-zero: gates learn first
    if probability == 1.0:
        assert sc_grad.abs().sum() > 0
    else:
        assert sc_grad is None or sc_grad.abs().sum() == 0  # the extra input was zeros


def test_no_self_conditioning_input_when_trained_without_it(eight):
    params = tiny_params()
    params.model.diffusion.self_condition = 0.0
    model = E.build(params, eight[1])
    assert model.denoiser.self_cond_proj is None
    assert sampler_config(params.sample, model.denoiser).self_condition is False


def test_denoising_recovers_lightly_noised_sentences(eight, trained):
    tok, vocab, batch = eight
    t = torch.full((8,), 0.1, dtype=torch.float64)
    emb = trained.embedding(batch)
    x_t = trained.process.q_sample(emb, t, torch.randn(emb.shape, generator=torch.Generator().manual_seed(0)))
    with torch.no_grad():
        x0 = trained.predict_x0(x_t, t, torch.zeros_like(x_t))
    ids = E.NearestEmbedding("faiss")(x0, trained.embedding.weight)
    assert torch.equal(ids, batch)


def test_tiny_model_regenerates_its_training_sentences(eight, trained):
    tok, vocab, batch = eight
    ids = E.generate(trained, 32, tiny_params().sample, torch.Generator().manual_seed(0), torch.device("cpu"))
    texts = tok.batch_decode(ids, skip_special_tokens=True)
    exact = sum(t in SENTENCES for t in texts) / len(texts)
    assert exact >= 0.4, texts  # measured 0.56-0.69 with 50 steps; pure noise gives 0
    assert len({t for t in texts if t in SENTENCES}) >= 3


def test_sampling_is_seeded(eight, trained):
    sp = tiny_params().sample.model_copy(update={"steps": 10})
    runs = [E.generate(trained, 4, sp, torch.Generator().manual_seed(7), torch.device("cpu")) for _ in range(2)]
    assert runs[0] == runs[1]


def test_rounding_error_is_the_distance_to_the_nearest_embedding(trained):
    from textdiff.sampling.rounding import NearestEmbedding

    table = trained.embedding.weight.detach()
    exact = table[torch.tensor([[3, 5, 7], [1, 2, 9]])]
    nearest = NearestEmbedding("torch")
    assert torch.equal(E.rounding_error(exact, trained, nearest), torch.zeros(2))
    shift = torch.zeros_like(exact)
    shift[..., 0] = 1e-3  # far smaller than the gaps between embeddings: each vector keeps its own nearest
    assert torch.allclose(E.rounding_error(exact + shift, trained, nearest), torch.full((2,), 1e-3), atol=1e-6)


def test_sample_texts_reports_the_rounding_error_with_an_interval(eight, trained):
    tok = eight[0]
    params = tiny_params().sample.model_copy(update={"num_samples": 8, "batch_size": 4, "steps": 5})
    _, speed = E.sample_texts(trained, tok, params, RunContext())
    lo, hi = speed["rounding_error_ci"]
    assert 0 <= lo <= speed["rounding_error"] <= hi
