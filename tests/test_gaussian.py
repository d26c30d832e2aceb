"""The Gaussian core: schedules, forward process, posterior, parametrisations, samplers."""

import math

import pytest
import torch

from textdiff.processes.gaussian import GaussianProcess
from textdiff.processes.schedules import alpha_bar
from textdiff.sampling.gaussian_sampler import SamplerConfig, sample, time_grid
from textdiff.training.self_conditioning import self_condition_input


def ab(name, t, **kw):
    return alpha_bar(name, torch.tensor([t], dtype=torch.float64), **kw).item()


def test_schedules_against_hand_values():
    assert math.isclose(ab("sqrt", 0.25), 1 - math.sqrt(0.25 + 1e-4))
    assert math.isclose(ab("sqrt", 0.0), 0.99)
    assert math.isclose(ab("cosine", 0.0), 1.0)
    s = 0.008
    assert math.isclose(ab("cosine", 0.5), math.cos((0.5 + s) / (1 + s) * math.pi / 2) ** 2
                        / math.cos(s / (1 + s) * math.pi / 2) ** 2)
    assert math.isclose(ab("linear", 1.0), math.exp(-0.1 - 0.5 * 19.9))
    assert math.isclose(ab("tan_d", 0.5), 1 / (1 + 81))  # tan(π/4) = 1
    assert math.isclose(ab("tan_d", 0.5, tan_d=3.0), 1 / 10)


@pytest.mark.parametrize("name", ["sqrt", "cosine", "linear", "tan_d"])
def test_alpha_bar_is_monotone_and_in_range(name):
    values = alpha_bar(name, torch.linspace(0, 1, 2001, dtype=torch.float64))
    assert (values[1:] <= values[:-1]).all() and (values[1:] < values[:-1]).sum() > 1900
    assert values.min() > 0 and values.max() <= 1 and values[-1] < 0.01


def test_unknown_schedule_is_named():
    with pytest.raises(ValueError, match="unknown noise schedule 'quadratic'"):
        alpha_bar("quadratic", torch.zeros(1))


def test_q_sample_mean_and_variance():
    proc = GaussianProcess("cosine", 1000)
    x0 = torch.full((200_000, 1), 2.0)
    t = torch.full((200_000,), 0.4, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    x_t = proc.q_sample(x0, t, torch.randn(x0.shape, generator=g))
    a = ab("cosine", 0.4)
    assert abs(x_t.mean().item() - 2 * math.sqrt(a)) < 0.01
    assert abs(x_t.var().item() - (1 - a)) < 0.01


def test_posterior_equals_gaussian_conditioning_by_hand():
    """q(x_s | x_t, x0) from the joint Gaussian of (x_s, x_t) given x0, derived independently."""
    proc = GaussianProcess("sqrt", 2000)
    t, s = 0.6, 0.35
    ab_t, ab_s = ab("sqrt", t), ab("sqrt", s)
    a = ab_t / ab_s
    x0, x_t = 1.3, -0.7
    cov = math.sqrt(a) * (1 - ab_s)  # Cov(x_s, x_t | x0)
    mean_hand = math.sqrt(ab_s) * x0 + cov / (1 - ab_t) * (x_t - math.sqrt(ab_t) * x0)
    var_hand = (1 - ab_s) - cov ** 2 / (1 - ab_t)
    mean, var = proc.posterior(torch.tensor([[x_t]]), torch.tensor([[x0]]), torch.tensor([t]), torch.tensor([s]))
    assert math.isclose(mean.item(), mean_hand, rel_tol=1e-5)
    assert math.isclose(var.item(), var_hand, rel_tol=1e-5)


@pytest.mark.parametrize("param", ["x0", "eps", "v"])
def test_parametrisations_round_trip(param):
    proc = GaussianProcess("cosine", 1000)
    g = torch.Generator().manual_seed(1)
    x0, noise = torch.randn(8, 5, 3, generator=g), torch.randn(8, 5, 3, generator=g)
    t = torch.rand(8, generator=g, dtype=torch.float64) * 0.98
    x_t = proc.q_sample(x0, t, noise)
    target = proc.target(x0, noise, t, param)
    torch.testing.assert_close(proc.x0_from(target, x_t, t, param), x0, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(proc.eps_from_x0(x0, x_t, t), noise, atol=1e-4, rtol=1e-4)


def test_ddim_eta0_is_deterministic_and_eta1_is_the_posterior():
    proc = GaussianProcess("linear", 1000)
    g = torch.Generator().manual_seed(2)
    x_t, x0 = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
    t, s = torch.full((4,), 0.7, dtype=torch.float64), torch.full((4,), 0.5, dtype=torch.float64)
    n1, n2 = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
    torch.testing.assert_close(proc.ddim_step(x_t, x0, t, s, 0.0, n1), proc.ddim_step(x_t, x0, t, s, 0.0, n2))
    mean, var = proc.posterior(x_t, x0, t, s)
    torch.testing.assert_close(proc.ddim_step(x_t, x0, t, s, 1.0, n1), mean + var.sqrt() * n1, atol=1e-5, rtol=1e-5)


def test_timesteps_uniform_and_low_discrepancy():
    proc = GaussianProcess("sqrt", 100)
    t = proc.sample_times(10_000, torch.Generator().manual_seed(0))
    assert set((t * 100).round().long().tolist()) == set(range(100))
    strat = proc.sample_times(10, torch.Generator().manual_seed(0), low_discrepancy=True)
    assert sorted((strat * 10).floor().long().tolist()) == list(range(10))  # one per tenth


def toy_denoiser(target: torch.Tensor):
    """An 'oracle' that always predicts the same clean x0, and records its calls."""
    calls = []

    def denoise(x_t, t, self_cond):
        calls.append((t[0].item(), None if self_cond is None else self_cond.clone()))
        return target.expand_as(x_t).clone()
    return denoise, calls


def test_sampler_grid_is_independent_of_training_T_and_reproducible():
    proc = GaussianProcess("sqrt", 2000)
    grid = time_grid(proc, 50)
    assert len(grid) == 50 and math.isclose(grid[0].item(), 1999 / 2000) and grid[-1].item() == 0.0
    target = torch.randn(1, 4, 3)
    denoise, calls = toy_denoiser(target)
    cfg = SamplerConfig(steps=7, method="ddpm", self_condition=True)
    out = sample(denoise, proc, (2, 4, 3), cfg, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, target.expand(2, 4, 3))
    assert len(calls) == 7
    assert calls[0][1].abs().sum() == 0 and torch.allclose(calls[1][1], target.expand(2, 4, 3))
    seeds = [sample(lambda x, t, sc: x * 0.5, proc, (2, 4, 3), cfg, generator=torch.Generator().manual_seed(3))
             for _ in range(2)]
    torch.testing.assert_close(seeds[0], seeds[1])


def test_sampler_hooks_clamp_infill_and_guidance():
    proc = GaussianProcess("cosine", 1000)
    shape = (3, 5, 2)
    steps_seen = []

    def denoised_fn(x0, k):
        steps_seen.append(k)
        return x0.round()

    denoise = lambda x, t, sc: x * 0.3  # noqa: E731
    cfg = SamplerConfig(steps=6, self_condition=False)
    out = sample(denoise, proc, shape, cfg, generator=torch.Generator().manual_seed(0), denoised_fn=denoised_fn)
    assert steps_seen == list(range(6)) and torch.equal(out, out.round())

    mask = torch.zeros(3, 5, dtype=torch.bool)
    mask[:, 1] = True
    known = torch.full(shape, 7.0)
    out = sample(denoise, proc, shape, cfg, generator=torch.Generator().manual_seed(0), infill=(mask, known))
    assert (out[:, 1] == 7.0).all() and not (out[:, 0] == 7.0).all()

    goal = torch.full(shape, 2.0)
    score = lambda x0, t: -((x0 - goal) ** 2).sum(dim=(1, 2))  # noqa: E731
    free = sample(denoise, proc, shape, cfg, generator=torch.Generator().manual_seed(0))
    for on in ("x0", "x_t"):
        guided = sample(denoise, proc, shape, SamplerConfig(steps=6, self_condition=False, guidance_scale=0.2,
                                                            guidance_on=on),
                        generator=torch.Generator().manual_seed(0), guidance=score)
        assert (guided - goal).abs().mean() < (free - goal).abs().mean(), on


def test_self_condition_input_branches():
    like = torch.ones(2, 3)
    seen = []
    estimate = lambda sc: (seen.append(sc), like * 5 + torch.zeros(1, requires_grad=True))[1]  # noqa: E731
    assert torch.equal(self_condition_input(estimate, like, 0.0), torch.zeros(2, 3)) and not seen
    out = self_condition_input(estimate, like, 1.0)
    assert torch.equal(out, like * 5) and not out.requires_grad and seen[0].abs().sum() == 0


def test_the_sampler_registry_offers_exactly_the_methods_params_allow():
    import typing

    from textdiff.config import ContinuousSampleParams
    from textdiff.sampling.gaussian_sampler import STEPS

    assert set(typing.get_args(ContinuousSampleParams.model_fields["method"].annotation)) == set(STEPS)
    with pytest.raises(ValueError, match=r"unknown sampling method 'euler' \(ddpm \| ddim\)"):
        sample(lambda x, t, sc: x, GaussianProcess("sqrt", 100), (1, 2, 3), SamplerConfig(steps=2, method="euler"))
