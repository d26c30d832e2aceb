"""The graph methods SEDD steps and trains with, the shared stratified ELBO loop, the time grids and
SEDD's sampler registry: hand values and identities between the graph maths and the literal formulas."""

import math
from typing import get_args

import pytest
import torch

from textdiff.config import SEDDSampleParams
from textdiff.eval.elbo import stratified_bound
from textdiff.families import sedd
from textdiff.losses.discrete import score_entropy_absorb
from textdiff.processes.discrete import Absorbing, Geometric, LogLinear, Uniform, continuous_time
from textdiff.processes.gaussian import GaussianProcess
from textdiff.sampling.gaussian_sampler import time_grid
from textdiff.sampling.grid import continuous_times, integer_times

V, MASK = 30, 4


def normalised_logits(shape, seed=0):
    """log p_θ over V tokens, never [MASK]: float64, so the hand values compare to ~1e-15."""
    logits = torch.randn(*shape, V, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    logits[..., MASK] = float("-inf")
    return torch.log_softmax(logits, -1)


def test_absorbing_euler_and_tweedie_both_reveal_with_dt_over_t_on_loglinear():
    """Log-linear (ε = 0): −α′/(1−α) = 1/t and (α_s − α_t)/(1 − α_t) = (t − s)/t, so with e^z = p_θ the Euler
    step and the Tweedie step (MDLM's ancestral step) are the same distribution: y with (t − s)/t·p_θ(y),
    [MASK] stays with s/t; an already revealed token stays."""
    graph, schedule = Absorbing(V, MASK), LogLinear()
    log_p = normalised_logits((1, 3))
    x_t = torch.tensor([[MASK, 7, MASK]])
    t, s = torch.tensor(0.8, dtype=torch.float64), torch.tensor(0.3, dtype=torch.float64)
    expected = (t - s) / t * log_p.exp()
    expected[..., MASK] = s / t
    expected[0, 1] = torch.nn.functional.one_hot(torch.tensor(7), V).double()
    euler = graph.euler_probs(log_p, x_t, schedule, t, s)
    tweedie = graph.tweedie_probs(log_p, x_t, schedule.alpha(t), schedule.alpha(s))
    torch.testing.assert_close(euler, expected, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(tweedie, expected, rtol=1e-12, atol=1e-15)


def test_uniform_euler_by_hand():
    """rate(x_t → y) = (σ/V)·s_y with log s = z: y ≠ x_t gets (t − s)·σ(t)/V·e^{z_y}, x_t keeps the rest."""
    graph, schedule = Uniform(4), Geometric()
    z = torch.tensor([[[0.5, -1.0, 0.0, 2.0]]], dtype=torch.float64)
    t, s = torch.tensor(0.5, dtype=torch.float64), torch.tensor(0.49, dtype=torch.float64)
    rate = schedule.rate(t).item()
    jump = [0.01 * rate / 4 * math.exp(v) for v in (0.5, -1.0, 0.0, 2.0)]
    jump[2] = 0.0
    jump[2] = 1 - sum(jump)
    probs = graph.euler_probs(graph.score_logits(z, torch.tensor([[2]])), torch.tensor([[2]]), schedule, t, s)
    torch.testing.assert_close(probs[0, 0], torch.tensor(jump, dtype=torch.float64), rtol=1e-12, atol=0)


def test_absorbing_log_score_and_scaled_score_entropy_agree_with_the_literal_definition():
    """The graph's s = r·e^z (r = α/(1−α), z offset by −log(V−1)) fed to the literal σ·[Σ s − r·log s_{x0} + K(r)]
    gives its finite-at-α = 0 score entropy: a wrong r in log_score, or a z the two read differently, breaks this."""
    graph, schedule = Absorbing(V, MASK), LogLinear(eps=1e-3)
    g = torch.Generator().manual_seed(1)
    t = torch.tensor([0.2, 0.6, 0.95], dtype=torch.float64)
    x0 = torch.randint(5, V, (3, 8), generator=g)
    x_t = graph.corrupt(x0, schedule.total(t), g)
    z = graph.score_logits(torch.randn(3, 8, V, generator=g), x_t)
    assert (z[..., MASK] == float("-inf")).all()
    literal = score_entropy_absorb(graph.log_score(z, schedule.alpha(t)), x0, x_t, MASK, schedule.rate(t),
                                   schedule.total(t))
    torch.testing.assert_close(graph.score_entropy(z, x0, x_t, schedule, t), literal, rtol=1e-5, atol=1e-5)
    assert (literal[x_t != MASK] == 0).all() and (literal[x_t == MASK] > 0).all()


def test_graphs_name_the_prior_the_samplers_start_from():
    assert Absorbing(V, MASK).prior == "mask" and Uniform(V).prior == "uniform"


def test_sedd_sampler_registry_is_what_the_params_allow():
    assert set(sedd.SAMPLERS) == set(get_args(SEDDSampleParams.model_fields["method"].annotation))
    with pytest.raises(ValueError, match=r"unknown SEDD sampler 'ddim'; known: \['euler', 'tweedie'\]"):
        sedd.sample_canvas(None, 1, 1, torch.Generator(), torch.device("cpu"), "ddim")


def test_stratified_bound_draws_t_then_the_terms_own_noise_per_draw():
    """Draw k: u ~ U[0,1) per sequence, t = time_of((k + u)/D), then the term's draws, all from one generator."""
    def token_terms(x0, t, generator):  # one "token" per sequence: t plus the term's own uniform draw
        return (t + torch.rand(x0.shape[0], generator=generator, dtype=torch.float64))[:, None]

    x0, draws, prior = torch.zeros(3, 5, dtype=torch.long), 4, torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    bound, per_draw = stratified_bound(token_terms, x0, draws, continuous_time, torch.Generator().manual_seed(0),
                                       prior, per_draw=True)
    g = torch.Generator().manual_seed(0)
    by_hand = []
    for k in range(draws):
        u = torch.rand(3, generator=g, dtype=torch.float64)
        by_hand.append(((k + u) / draws).clamp(1e-5, 1.0) + torch.rand(3, generator=g, dtype=torch.float64))
    by_hand = prior[:, None] + torch.stack(by_hand, 1)
    torch.testing.assert_close(per_draw, by_hand, rtol=0, atol=0)
    torch.testing.assert_close(bound, by_hand.mean(1), rtol=1e-15, atol=0)
    plain = stratified_bound(token_terms, x0, draws, continuous_time, torch.Generator().manual_seed(0))
    torch.testing.assert_close(plain, by_hand.mean(1) - prior, rtol=1e-15, atol=1e-15)


def test_time_grids():
    grid = continuous_times(4)
    assert grid.dtype == torch.float64 and grid.tolist() == [1.0, 0.75, 0.5, 0.25, 0.0]
    assert integer_times(10, 4).tolist() == [10, 8, 5, 2, 0]  # rounded 7.5 and 2.5 go to even
    assert integer_times(3, 10).tolist() == [3, 2, 1, 0]  # distinct: fewer steps than asked when steps > T
    gauss = time_grid(GaussianProcess("sqrt", 100), 5)  # one point per denoiser call, the last at t = 0
    assert len(gauss) == 5 and gauss[0].item() == 0.99 and gauss[-1].item() == 0.0


def test_absorbing_tweedie_with_unnormalised_scores_follows_seds_reference():
    """Σ e^z = 2 on the log-linear schedule, t 0.7 → 0.65 (α_t = 0.3, α_s = 0.35): each reveal is
    (α_s − α_t)/(1 − α_t)·e^{z_y} = e^{z_y}/14, so they sum to 1/7, and [MASK] stays with 1 − 1/7 = 0.857142…
    as in SEDD's AnalyticPredictor (staggered score × transposed transition). Keeping the stay at
    (1 − α_s)/(1 − α_t) = 13/14 and renormalising gave 0.8667 instead."""
    graph, schedule = Absorbing(V, MASK), LogLinear()
    log_p = normalised_logits((1, 2))
    z = log_p + math.log(2.0)  # scores twice the normalised ones
    x_t = torch.tensor([[MASK, 7]])
    t, s = torch.tensor(0.7, dtype=torch.float64), torch.tensor(0.65, dtype=torch.float64)
    probs = graph.tweedie_probs(z, x_t, schedule.alpha(t), schedule.alpha(s))
    expected = (2.0 / 14.0) * log_p.exp()
    expected[0, 0, MASK] = 1 - 1 / 7
    expected[0, 1] = torch.nn.functional.one_hot(torch.tensor(7), V).double()
    torch.testing.assert_close(probs, expected, rtol=1e-12, atol=1e-15)
    assert probs[0, 0, MASK].item() == pytest.approx(0.857142857, abs=1e-9)
    torch.testing.assert_close(probs.sum(-1), torch.ones(1, 2, dtype=torch.float64))


def test_absorbing_tweedie_stay_is_clipped_at_zero_when_the_reveals_exceed_one():
    graph, schedule = Absorbing(V, MASK), LogLinear()
    z = normalised_logits((1, 1)) + math.log(40.0)  # reveals sum to 40/14 > 1
    probs = graph.tweedie_probs(z, torch.tensor([[MASK]]), schedule.alpha(torch.tensor(0.7, dtype=torch.float64)),
                                schedule.alpha(torch.tensor(0.65, dtype=torch.float64)))
    assert probs[0, 0, MASK].item() == 0.0 and (probs >= 0).all()
