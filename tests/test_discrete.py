"""Discrete diffusion: schedules, graphs, the masked-diffusion ELBO and its cached sampler."""

import math

import pytest
import torch

from textdiff.config import MDLMParams
from textdiff.data.vocab import Vocab
from textdiff.families import mdlm
from textdiff.losses.discrete import entropy_constant, masked_diffusion_loss, score_entropy_absorb
from textdiff.processes.discrete import Absorbing, Cosine, Geometric, LogLinear, Uniform, discrete_schedule

VOCAB = Vocab(size=30, pad_id=0, bos_id=1, eos_id=2, mask_id=4)


def test_loglinear_by_hand():
    s = LogLinear(eps=1e-3)
    t = torch.tensor([0.5], dtype=torch.float64)
    assert math.isclose(s.total(t).item(), -math.log(1 - 0.999 * 0.5))
    assert math.isclose(-math.expm1(-s.total(t).item()), 0.999 * 0.5)  # masked fraction is (1−ε)t
    assert math.isclose(s.rate(t).item(), 0.999 / (1 - 0.999 * 0.5))


@pytest.mark.parametrize("schedule", [LogLinear(), Geometric(), Cosine()])
def test_rate_is_the_derivative_of_total_noise(schedule):
    t = torch.tensor([0.1, 0.4, 0.8], dtype=torch.float64)
    h = 1e-6
    numeric = (schedule.total(t + h) - schedule.total(t - h)) / (2 * h)
    torch.testing.assert_close(numeric, schedule.rate(t), rtol=1e-5, atol=1e-6)
    assert (schedule.rate(t) > 0).all()


def test_unknown_schedule():
    with pytest.raises(ValueError, match="unknown discrete noise schedule 'sqrt'"):
        discrete_schedule("sqrt")


def test_corruption_statistics():
    x0 = torch.randint(5, 30, (400, 100), generator=torch.Generator().manual_seed(0))
    total = torch.full((400,), -math.log(0.3), dtype=torch.float64)  # corrupt with probability 0.7
    g = torch.Generator().manual_seed(1)
    masked = Absorbing(30, 4).corrupt(x0, total, g)
    assert abs((masked == 4).double().mean().item() - 0.7) < 0.01
    assert torch.equal(masked[masked != 4], x0[masked != 4])
    changed = (Uniform(30).corrupt(x0, total, g) != x0).double().mean().item()
    assert abs(changed - 0.7 * (1 - 1 / 30)) < 0.01  # a uniform draw may land on the same token


def test_transition_matrices_are_stochastic():
    for q in (Absorbing(6, 5).transition_matrix(0.3), Uniform(6).transition_matrix(0.3)):
        torch.testing.assert_close(q.sum(1), torch.ones(6, dtype=torch.float64))
        assert (q >= 0).all()


def test_entropy_constant_by_hand():
    a = torch.tensor([0.0, 1.0, math.e, 2.0], dtype=torch.float64)
    torch.testing.assert_close(entropy_constant(a), torch.tensor([0.0, -1.0, 0.0, 2 * (math.log(2) - 1)],
                                                                 dtype=torch.float64))


def test_sedd_absorb_score_entropy_equals_the_masked_diffusion_loss():
    """With log s_y = log(r·p_θ(y)), r = 1/(e^σ̄ − 1), score entropy is −log p_θ(x0)·α′/(1−α)."""
    g = torch.Generator().manual_seed(0)
    schedule = LogLinear()
    t = torch.tensor([0.15, 0.5, 0.9], dtype=torch.float64)
    total, rate = schedule.total(t), schedule.rate(t)
    x0 = torch.randint(5, 30, (3, 12), generator=g)
    x_t = Absorbing(30, 4).corrupt(x0, total, g)
    logits = torch.randn(3, 12, 30, generator=g)
    logits[..., 4] = float("-inf")
    logp = torch.log_softmax(logits.double(), -1)
    weight = rate * torch.exp(-total) / -torch.expm1(-total)
    torch.testing.assert_close(weight, 1 / t, rtol=1e-9, atol=0)  # exactly 1/t for log-linear
    mdlm_loss = masked_diffusion_loss(logp[x_t == 4], x0, x_t == 4, weight).double()
    ratio = 1 / torch.expm1(total)
    sedd_loss = score_entropy_absorb(logp + ratio.log().view(-1, 1, 1), x0, x_t, 4, rate, total)
    torch.testing.assert_close(sedd_loss, mdlm_loss, rtol=1e-9, atol=1e-9)
    assert (mdlm_loss[x_t != 4] == 0).all() and (mdlm_loss[x_t == 4] > 0).all()


def tiny(**model) -> mdlm.MaskedDiffusion:
    torch.manual_seed(0)
    params = MDLMParams.model_validate({"model": {"d_model": 32, "n_layers": 2, "n_heads": 2, "seq_len": 12,
                                                  "positions": "learned", **model}})  # as these tests were sized
    return mdlm.build(params, VOCAB).eval()


def test_subs_parametrisation():
    model = tiny()
    x = torch.tensor([[1, 4, 7, 4, 2, 0]])
    logp = model.log_probs(torch.cat([x, x], 1), torch.tensor([0.5]))
    probs = logp.exp()
    torch.testing.assert_close(probs.sum(-1), torch.ones(1, 12))
    assert (probs[..., 4] == 0).all()  # never predicts [MASK]
    assert probs[0, 2, 7] == 1 and probs[0, 0, 1] == 1  # unmasked positions carry over


def test_loss_matches_a_hand_computation():
    model = tiny()
    x0 = torch.randint(5, 30, (8, 12), generator=torch.Generator().manual_seed(1))
    t = torch.linspace(0.1, 0.9, 8, dtype=torch.float64)
    ours = model.token_losses(x0, t, torch.Generator().manual_seed(2))
    x_t = model.graph.corrupt(x0, model.schedule.total(t), torch.Generator().manual_seed(2))
    masked = x_t == 4
    logp = model.log_probs(x_t, t)
    hand = torch.where(masked, -logp.gather(-1, x0[..., None]).squeeze(-1) * model.weight(t).float()[:, None],
                       torch.zeros(()))
    torch.testing.assert_close(ours, hand, rtol=1e-5, atol=1e-5)


def test_loss_at_initialisation_is_near_log_vocab():
    """An untrained SUBS denoiser is ≈ uniform over the V−1 non-mask tokens; the ELBO weight
    integrates the masked fraction to ≈ 1 per token, so the loss is ≈ log(V−1)."""
    model = tiny()
    x0 = torch.randint(5, 30, (512, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        loss = model.loss(x0).item()
    assert abs(loss - math.log(29)) < 0.15 * math.log(29), loss


def test_cached_sampler_gives_the_same_samples_with_fewer_calls():
    model = tiny()
    with torch.no_grad():  # a peaked model, so samples are not all alike
        model.denoiser.tok_emb.weight.mul_(30)
    runs, nfes = [], []
    for cache in (True, False):
        stats = {}
        runs.append(mdlm.generate(model, 6, 64, torch.Generator().manual_seed(3), torch.device("cpu"),
                                  use_cache=cache, stats=stats))
        nfes.append(stats["nfe"])
    assert runs[0] == runs[1]
    assert nfes[1] == 64 and nfes[0] < 64  # evaluations per sequence
    other = mdlm.generate(model, 6, 64, torch.Generator().manual_seed(4), torch.device("cpu"))
    assert other != runs[0]


def test_infill_holds_known_tokens():
    model = tiny()
    known = torch.zeros(3, 12, dtype=torch.bool)
    known[:, 3:5] = True
    tokens = torch.full((3, 12), 9)
    canvas = mdlm.sample_canvas(model, 3, 8, torch.Generator().manual_seed(0), torch.device("cpu"),
                                infill=(known, tokens))
    assert (canvas[:, 3:5] == 9).all() and (canvas[:, 0] == VOCAB.bos_id).all()
    assert (canvas != VOCAB.mask_id).all()  # the last step reveals every remaining mask
    free = mdlm.sample_canvas(model, 3, 8, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert not (free[:, 3:5] == 9).all()


def test_the_cache_is_timed_as_the_paper_states_it_with_the_same_samples():
    """MDLM's claim: cached against uncached sampling at T steps, one seed, equal canvases; the cached run calls
    the network on fewer rows than steps × samples (with T ≫ L most steps reveal nothing), the uncached on all."""
    model = tiny()
    out = mdlm.cache_wall_clock(model, 3, 200, seed=0, device=torch.device("cpu"))
    assert out["cache_same_samples"] is True and out["cache_steps"] == 200 and out["cache_samples"] == 3
    assert out["uncached_nfe"] == 200 and out["cached_nfe"] < 200 / 2
    assert out["cache_wall_speedup"] == out["uncached_wall_s"] / out["cached_wall_s"]
    timed = tiny(time_conditioning=True)  # a t-dependent denoiser: nothing may be cached
    assert mdlm.cache_wall_clock(timed, 2, 50, seed=0, device=torch.device("cpu"))["cached_nfe"] == 50
