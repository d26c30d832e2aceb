import math

import torch

from textdiff.config import BackboneParams, TrainParams
from textdiff.data.vocab import Vocab
from textdiff.families import ar
from textdiff.losses.causal import sequence_nll
from textdiff.sampling.categorical import sample_categorical, top_p_filter
from textdiff.training.loop import train
from textdiff.training.lr_schedule import lr_at

VOCAB = Vocab(size=40, pad_id=0, bos_id=1, eos_id=2)


def tiny_model(dropout=0.0):
    torch.manual_seed(0)
    return ar.build_backbone(BackboneParams(d_model=32, n_layers=2, n_heads=4, seq_len=20, dropout=dropout), VOCAB)


def test_kv_cache_generation_equals_recomputation_under_a_fixed_seed():
    model = tiny_model().eval()
    with torch.no_grad():  # raise the <eos> logit by ~2.5 so that sequence lengths vary
        e = model.tok_emb.weight[VOCAB.eos_id]
        model.norm_out.bias.copy_(e * 2.5 / e.dot(e))
    runs = [ar.generate(model, 16, VOCAB, top_p=0.95, generator=torch.Generator().manual_seed(5), use_cache=c)
            for c in (True, False)]
    assert runs[0] == runs[1]
    assert len({len(s) for s in runs[0]}) > 1
    other = ar.generate(model, 16, VOCAB, top_p=0.95, generator=torch.Generator().manual_seed(6))
    assert other != runs[0]


def test_top_p_keeps_the_smallest_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = torch.isfinite(top_p_filter(logits, 0.7))
    assert kept.tolist() == [[True, True, False, False]]
    assert torch.isfinite(top_p_filter(logits, 0.8)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(top_p_filter(logits, 0.81)).tolist() == [[True, True, True, False]]
    assert torch.isfinite(top_p_filter(logits, 1e-6)).sum() == 1


def test_categorical_sampling_matches_probabilities():
    probs = torch.tensor([0.6, 0.25, 0.1, 0.05])
    draws = sample_categorical(probs.log().expand(200_000, 4), generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=4).double() / 200_000
    assert torch.allclose(freq, probs.double(), atol=4e-3)
    cold = sample_categorical(probs.log().expand(20_000, 4), temperature=0.5, generator=torch.Generator().manual_seed(0))
    sharpened = probs ** 2 / (probs ** 2).sum()
    assert abs((cold == 0).double().mean() - sharpened[0]) < 0.01


def test_nucleus_sampling_draws_the_renormalised_tempered_nucleus():
    """With a nucleus, sample_categorical draws by inverse CDF: it keeps the nucleus top_p_filter keeps and draws
    from it with the renormalised (tempered) probabilities, never from the tail; over three seeds."""
    probs = torch.tensor([0.3, 0.05, 0.5, 0.15])  # unsorted on purpose
    nucleus = torch.tensor([0.3, 0.0, 0.5, 0.0]) / 0.8  # top_p 0.7: 0.5, then 0.3 (0.5 before it)
    cold = torch.tensor([0.09, 0.0, 0.25, 0.0]) / 0.34  # temperature 0.5 squares, then top_p 0.7
    for seed in range(3):
        for temperature, expected in ((1.0, nucleus), (0.5, cold)):
            draws = sample_categorical(probs.log().expand(100_000, 4), temperature, 0.7,
                                       torch.Generator().manual_seed(seed))
            freq = torch.bincount(draws, minlength=4).double() / 100_000
            assert torch.allclose(freq, expected.double(), atol=6e-3), (temperature, freq)  # ≈ 4 standard errors
    logits = torch.randn(64, 5, 50, generator=torch.Generator().manual_seed(1)) * 3
    for top_p in (1e-6, 0.5, 0.9):
        kept = torch.isfinite(top_p_filter(logits, top_p))
        draws = torch.stack([sample_categorical(logits, 1.0, top_p, torch.Generator().manual_seed(s))
                             for s in range(20)])
        assert draws.shape == (20, 64, 5)
        assert kept.gather(-1, draws.permute(1, 2, 0)).all()  # every draw inside the nucleus
        assert kept.sum(-1).min() >= 1 and (top_p > 1e-5 or kept.sum(-1).max() == 1)


def test_lr_schedule_by_hand():
    assert lr_at(0, 1.0, 10, 110, 0.1) == 0.1
    assert lr_at(9, 1.0, 10, 110, 0.1) == 1.0
    assert math.isclose(lr_at(60, 1.0, 10, 110, 0.1), 0.1 + 0.9 * 0.5)
    assert math.isclose(lr_at(110, 1.0, 10, 110, 0.1), 0.1)


def toy_batches(step: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(step)
    body = torch.randint(3, 8, (8, 1), generator=g).repeat(1, 6)  # each sequence repeats one token
    return torch.cat([torch.full((8, 1), 1), body, torch.full((8, 1), 2)], dim=1)


def test_loss_starts_near_log_vocab_and_falls():
    model = tiny_model()
    random_tokens = torch.randint(3, VOCAB.size, (64, 16), generator=torch.Generator().manual_seed(0))
    first = ar.training_loss(model, random_tokens, VOCAB).item()
    assert abs(first - math.log(VOCAB.size)) < 0.2, first
    cfg = TrainParams(steps=60, lr=3e-3, warmup_steps=5, checkpoint_every=1000, log_every=10)
    result = train(model, lambda m, b: ar.training_loss(m, b, VOCAB), toy_batches, cfg,
                   checkpoint_dir=None, fingerprint="x", device=torch.device("cpu"), progress=False)
    assert result.final_loss < 1.0 and result.steps == 60 and result.stopped_by == "steps"


def test_resume_after_interruption_equals_uninterrupted_run(tmp_path):
    cfg = TrainParams(steps=12, lr=3e-3, warmup_steps=2, checkpoint_every=5, log_every=1)
    loss = lambda m, b: ar.training_loss(m, b, VOCAB)  # noqa: E731
    cpu = torch.device("cpu")
    whole = tiny_model(dropout=0.2)
    train(whole, loss, toy_batches, cfg, checkpoint_dir=tmp_path / "a", fingerprint="f", device=cpu, progress=False)

    first = tiny_model(dropout=0.2)
    part = train(first, loss, toy_batches, cfg, checkpoint_dir=tmp_path / "b", fingerprint="f", device=cpu,
                 progress=False, stop_after=5)
    assert part.stopped_by == "interrupted" and part.steps == 5
    torch.manual_seed(123)  # a new process would start from other RNG state
    resumed = tiny_model(dropout=0.2)
    result = train(resumed, loss, toy_batches, cfg, checkpoint_dir=tmp_path / "b", fingerprint="f", device=cpu,
                   progress=False)
    assert result.resumed_from == 5 and result.steps == 12
    for (k, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)

    stale = tiny_model(dropout=0.2)  # another fingerprint (params changed) must not resume
    fresh = train(stale, loss, toy_batches, cfg, checkpoint_dir=tmp_path / "b", fingerprint="other", device=cpu,
                  progress=False, stop_after=1)
    assert fresh.resumed_from == 0


def test_checkpoints_of_older_params_do_not_evict_a_new_runs(tmp_path):
    """A run with new params (another fingerprint) next to later-step checkpoints of the old run keeps its own
    checkpoints, and resumes from them."""
    loss = lambda m, b: ar.training_loss(m, b, VOCAB)  # noqa: E731
    cpu = torch.device("cpu")
    old = TrainParams(steps=12, lr=3e-3, warmup_steps=2, checkpoint_every=4, log_every=1)
    train(tiny_model(), loss, toy_batches, old, checkpoint_dir=tmp_path, fingerprint="old", device=cpu,
          progress=False)  # leaves step 4 and step 8
    new = TrainParams(steps=6, lr=1e-3, warmup_steps=2, checkpoint_every=3, log_every=1)
    train(tiny_model(), loss, toy_batches, new, checkpoint_dir=tmp_path, fingerprint="new", device=cpu,
          progress=False, stop_after=4)  # killed after its step-3 checkpoint
    assert (tmp_path / (tmp_path / "latest").read_text().strip()).is_dir()
    resumed = train(tiny_model(), loss, toy_batches, new, checkpoint_dir=tmp_path, fingerprint="new", device=cpu,
                    progress=False)
    assert resumed.resumed_from == 3 and resumed.steps == 6


def test_wall_clock_budget_stops_training():
    cfg = TrainParams(steps=10_000, max_minutes=0.02, checkpoint_every=10_000)
    result = train(tiny_model(), lambda m, b: ar.training_loss(m, b, VOCAB), toy_batches, cfg,
                   checkpoint_dir=None, fingerprint="x", device=torch.device("cpu"), progress=False)
    assert result.stopped_by == "time" and 0 < result.steps < 10_000


def test_exact_nll_matches_a_hand_loop():
    model = tiny_model().eval()
    batch = toy_batches(3)
    nll, counts = sequence_nll(model, batch, VOCAB)
    with torch.no_grad():
        logp = torch.log_softmax(model(batch[:1, :-1]), -1)[0]
    hand = -sum(logp[i, batch[0, i + 1]].item() for i in range(batch.shape[1] - 1))
    assert math.isclose(nll[0].item(), hand, rel_tol=1e-5) and counts[0].item() == batch.shape[1] - 1
