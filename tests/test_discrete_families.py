"""D3PM and SEDD: posteriors against explicit matrices, score entropy against hand values,
the samplers' identities (SEDD Tweedie on absorb = masked ancestral step), and the models."""

import math

import pytest
import torch

from textdiff.config import D3PMParams, SEDDParams
from textdiff.data.vocab import Vocab
from textdiff.families import d3pm, mdlm, sedd
from textdiff.losses.discrete import (entropy_constant, masked_diffusion_loss, score_entropy_absorb,
                                      score_entropy_absorb_scaled, score_entropy_uniform, uniform_ratios)
from textdiff.processes.discrete import Absorbing, Geometric, LogLinear, Uniform, masked_weight
from textdiff.processes.discrete_time import (D3PMSchedule, explicit_cumulative, kl_categorical, posterior,
                                              posterior_from_matrices, posterior_kl, prior_kl)
from textdiff.sampling.discrete_sampler import jump
from tests.test_discrete import tiny

VOCAB = Vocab(size=30, pad_id=0, bos_id=1, eos_id=2, mask_id=4)
GRAPHS = [Uniform(7), Absorbing(7, 6)]


# --------------------------------------------------------------------------- D3PM process


def test_linear_schedule_is_d3pm_mutual_information_schedule():
    s = D3PMSchedule(10, "linear")
    t = torch.arange(1, 11, dtype=torch.float64)
    torch.testing.assert_close(s.betas()[1:], 1 / (10 - t + 1))  # β_t = 1/(T − t + 1)
    assert s.alphabar()[-1] == 0 and s.alphabar()[0] == 1
    cos = D3PMSchedule(10, "cosine").alphabar()
    assert cos[0] == 1 and cos[-1] == 0 and (cos[1:] < cos[:-1]).all()


def test_d3pm_cosine_is_the_reference_codes_cosine_not_its_square():
    """google-research d3pm: ᾱ_t = cos(((t/T + s)/(1 + s))·π/2) (normalised at t = 0), s = 0.008; at t = T/2 of
    T = 1000 that is 0.7027, the square 0.4938. Both end at ᾱ_T = 0 (the prior)."""
    s = 0.008
    by_hand = math.cos((0.5 + s) / (1 + s) * math.pi / 2) / math.cos(s / (1 + s) * math.pi / 2)
    cos, square = D3PMSchedule(1000, "cosine").alphabar(), D3PMSchedule(1000, "cosine_squared").alphabar()
    assert math.isclose(cos[500].item(), by_hand, rel_tol=1e-12) and abs(by_hand - 0.7027) < 1e-4
    assert math.isclose(square[500].item(), by_hand ** 2, rel_tol=1e-12)
    assert cos[-1] == 0 and square[-1] == 0


@pytest.mark.parametrize("kind", ["linear", "cosine", "cosine_squared"])
def test_every_d3pm_schedule_ends_at_the_absorbing_prior(kind):
    a_end = D3PMSchedule(1000, kind).alphabar()[-1].item()
    assert prior_kl(torch.tensor([[2, 3]]), a_end, Absorbing(5, 4).stationary()).sum().item() == 0


def test_continuous_cosine_reaches_alpha_zero_exactly():
    """cos(π/2) is 6e-17 in floating point; α(1) must be 0 or the absorbing prior term is infinite."""
    from textdiff.processes.discrete import Cosine

    assert Cosine().alpha(torch.tensor([1.0], dtype=torch.float64)).item() == 0
    assert math.isclose(Cosine().alpha(torch.tensor([0.5], dtype=torch.float64)).item(), math.cos(math.pi / 4))


def test_hybrid_lambda_weighs_the_cross_entropy_as_in_the_reference():
    """L_λ = T·(KL_t + λ·CE): the reference's KL_t + λ·CE, scaled by T; the ELBO term is T·KL_t."""
    from textdiff.losses.discrete import d3pm_hybrid_loss

    kl = torch.tensor([[0.02, 0.5]])
    log_x0 = torch.log(torch.tensor([[[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]]))
    x0 = torch.tensor([[0, 1]])
    loss, elbo = d3pm_hybrid_loss(kl, log_x0, x0, 1000, 0.01)
    ce = torch.tensor([[math.log(2), -math.log(0.8)]])
    torch.testing.assert_close(loss, 1000 * (kl + 0.01 * ce))
    torch.testing.assert_close(elbo, 1000 * kl)


@pytest.mark.parametrize("graph", GRAPHS, ids=["uniform", "absorbing"])
@pytest.mark.parametrize("kind", ["linear", "cosine", "cosine_squared"])
def test_explicit_products_have_the_closed_form(graph, kind):
    schedule = D3PMSchedule(6, kind)
    mats = explicit_cumulative(graph, schedule)
    for t, a in enumerate(schedule.alphabar().tolist()):
        closed = a * torch.eye(7, dtype=torch.float64) + (1 - a) * graph.stationary()[None, :]
        torch.testing.assert_close(mats[t], closed, rtol=0, atol=1e-12)


@pytest.mark.parametrize("graph", GRAPHS, ids=["uniform", "absorbing"])
def test_generic_posterior_equals_the_closed_form(graph):
    """Bayes with explicit Q_{t|s} and Q̄_s = the closed form, for one-hot and soft x0, adjacent and strided steps."""
    schedule = D3PMSchedule(8, "cosine")
    qbar = explicit_cumulative(graph, schedule)
    ab = schedule.alphabar()
    g = torch.Generator().manual_seed(0)
    real = 6 if isinstance(graph, Absorbing) else 7
    for t, s in [(1, 0), (2, 1), (5, 4), (8, 7), (8, 3), (6, 0)]:
        q_ts = torch.linalg.solve(qbar[s], qbar[t])  # Q̄_s·Q_{t|s} = Q̄_t
        x0 = torch.randint(0, real, (3, 4), generator=g)
        x_t = graph.corrupt(x0, -torch.log(ab[t]).expand(3), g)
        soft = torch.softmax(torch.randn(3, 4, 7, generator=g, dtype=torch.float64), -1)
        if isinstance(graph, Absorbing):
            soft[..., 6] = 0
            soft = soft / soft.sum(-1, keepdim=True)
        for x0_probs in (torch.nn.functional.one_hot(x0, 7).double(), soft):
            explicit = posterior_from_matrices(x0_probs, x_t, q_ts, qbar[s])
            closed = posterior(x0_probs, x_t, ab[t] / ab[s], ab[s], graph.stationary())
            torch.testing.assert_close(closed, explicit, rtol=0, atol=1e-12)


def test_posterior_closed_forms_by_hand():
    a_t, a_s = 0.3, 0.5
    # absorbing: from [MASK], x0 comes back with (ᾱ_s − ᾱ_t)/(1 − ᾱ_t), [MASK] stays with (1 − ᾱ_s)/(1 − ᾱ_t)
    q = posterior(torch.nn.functional.one_hot(torch.tensor([[2]]), 7).double(), torch.tensor([[6]]),
                  a_t / a_s, a_s, Absorbing(7, 6).stationary())[0, 0]
    assert math.isclose(q[2].item(), (a_s - a_t) / (1 - a_t)) and math.isclose(q[6].item(), (1 - a_s) / (1 - a_t))
    # uniform (Hoogeboom et al.): q ∝ [k·x_t + (1−k)/V] ⊙ [ᾱ_s·x0 + (1−ᾱ_s)/V], k = ᾱ_t/ᾱ_s
    k, V = a_t / a_s, 7
    hand = torch.tensor([(k * (y == 3) + (1 - k) / V) * (a_s * (y == 2) + (1 - a_s) / V) for y in range(V)])
    q = posterior(torch.nn.functional.one_hot(torch.tensor([[2]]), 7).double(), torch.tensor([[3]]),
                  k, a_s, Uniform(7).stationary())[0, 0]
    torch.testing.assert_close(q, (hand / hand.sum()).double())


@pytest.mark.parametrize("graph", [Uniform(30), Absorbing(30, 4)], ids=["uniform", "absorbing"])
def test_fast_posterior_kl_equals_the_dense_kl(graph):
    g = torch.Generator().manual_seed(0)
    x0 = torch.randint(5, 30, (6, 5), generator=g)
    logits = torch.randn(6, 5, 30, generator=g, dtype=torch.float64)
    if isinstance(graph, Absorbing):
        logits[..., 4] = float("-inf")
    log_pred = torch.log_softmax(logits, -1)
    keep = torch.tensor([0.0, 0.3, 0.9, 0.99, 0.5, 1.0], dtype=torch.float64)  # includes ᾱ_t = 0 and no-op steps
    a_s = torch.tensor([0.5, 0.2, 0.9, 1.0, 1e-4, 1.0], dtype=torch.float64)  # includes the t = 1 step (ᾱ_0 = 1)
    x_t = graph.corrupt(x0, -torch.log(keep * a_s), g)
    m = graph.stationary()
    dense = kl_categorical(posterior(torch.nn.functional.one_hot(x0, 30).double(), x_t, keep, a_s, m).log(),
                           posterior(log_pred.exp(), x_t, keep, a_s, m).log())
    torch.testing.assert_close(posterior_kl(log_pred, x0, x_t, keep, a_s, m), dense, rtol=1e-9, atol=1e-12)
    assert (dense >= -1e-12).all() and dense.max() > 0.1


def test_prior_kl_by_hand():
    x0 = torch.tensor([[2]])
    a, V = 0.2, 5
    q_x0, q_other = a + (1 - a) / V, (1 - a) / V
    hand = q_x0 * math.log(q_x0 * V) + (V - 1) * q_other * math.log(q_other * V)
    assert math.isclose(prior_kl(x0, a, Uniform(V).stationary()).item(), hand, rel_tol=1e-12)
    assert prior_kl(x0, 0.0, Absorbing(V, 4).stationary()).item() == 0


# --------------------------------------------------------------------------- score entropy


def test_sedd_uniform_constant_by_hand():
    """V = 4, α = 1/2: ratios a = (1−α)/(1−α+Vα) = 1/5, b = 1 + Vα/(1−α) = 5."""
    a, b = uniform_ratios(torch.tensor([0.5]), 4)
    assert math.isclose(a.item(), 0.2) and math.isclose(b.item(), 5.0)
    # With log s = 0 the loss is (σ/V)·Σ_{y≠x_t}[1 + K(r_y)]:
    # x_t = x0: 3·(1 + 0.2(log 0.2 − 1)); x_t ≠ x0: 2·(1 − 1) + (1 + 5(log 5 − 1)).
    zero = torch.zeros(1, 2, 4, dtype=torch.float64)
    x0, x_t = torch.tensor([[1, 1]]), torch.tensor([[1, 3]])
    loss = score_entropy_uniform(zero, x0, x_t, torch.tensor([2.0]), torch.tensor([0.5]))
    clean = 2.0 / 4 * 3 * (1 + 0.2 * (math.log(0.2) - 1))
    noisy = 2.0 / 4 * (1 + 5 * (math.log(5) - 1))
    torch.testing.assert_close(loss[0], torch.tensor([clean, noisy], dtype=torch.float64))


def brute_force_uniform(log_s, x0, x_t, sigma, alpha):
    V = log_s.shape[-1]
    out = torch.zeros(x0.shape, dtype=torch.float64)
    for b in range(x0.shape[0]):
        for i in range(x0.shape[1]):
            p = [alpha[b] * (y == x0[b, i]) + (1 - alpha[b]) / V for y in range(V)]
            for y in range(V):
                if y != x_t[b, i]:
                    r = p[y] / p[x_t[b, i]]
                    s = log_s[b, i, y].exp()
                    out[b, i] += sigma[b] / V * (s - r * log_s[b, i, y] + r * (math.log(r) - 1))
    return out


def test_sedd_uniform_loss_equals_the_definition_and_vanishes_at_the_true_ratios():
    g = torch.Generator().manual_seed(0)
    V = 6
    x0 = torch.randint(0, V, (3, 5), generator=g)
    alpha = torch.tensor([0.9, 0.4, 0.05], dtype=torch.float64)
    x_t = Uniform(V).corrupt(x0, -torch.log(alpha), g)
    sigma = torch.tensor([0.7, 1.3, 2.0], dtype=torch.float64)
    log_s = torch.randn(3, 5, V, generator=g, dtype=torch.float64)
    ours = score_entropy_uniform(log_s, x0, x_t, sigma, alpha)
    torch.testing.assert_close(ours, brute_force_uniform(log_s, x0, x_t, sigma, alpha))
    assert (ours > 0).all()
    p = alpha.view(-1, 1, 1) * torch.nn.functional.one_hot(x0, V) + (1 - alpha.view(-1, 1, 1)) / V
    true = (p / p.gather(-1, x_t[..., None])).log()
    torch.testing.assert_close(score_entropy_uniform(true, x0, x_t, sigma, alpha), torch.zeros(3, 5, dtype=torch.float64),
                               rtol=0, atol=1e-12)


def test_sedd_absorb_scaled_form_equals_the_definition():
    g = torch.Generator().manual_seed(1)
    schedule = LogLinear(eps=1e-3)
    t = torch.tensor([0.2, 0.6, 0.95], dtype=torch.float64)
    x0 = torch.randint(5, 30, (3, 8), generator=g)
    x_t = Absorbing(30, 4).corrupt(x0, schedule.total(t), g)
    z = torch.randn(3, 8, 30, generator=g, dtype=torch.float64)
    z[..., 4] = float("-inf")
    ratio = torch.exp(-schedule.total(t)) / -torch.expm1(-schedule.total(t))
    literal = score_entropy_absorb(z + ratio.log().view(-1, 1, 1), x0, x_t, 4, schedule.rate(t), schedule.total(t))
    scaled = score_entropy_absorb_scaled(z, x0, x_t, 4, masked_weight(schedule, t)).double()
    torch.testing.assert_close(scaled, literal.double(), rtol=1e-5, atol=1e-6)
    # and at the true ratios (s = r·δ(x0), i.e. z = 0 at x0, −inf elsewhere) it is zero
    true = torch.full_like(z, float("-inf")).scatter(-1, x0[..., None], 0.0)
    assert score_entropy_absorb_scaled(true, x0, x_t, 4, masked_weight(schedule, t)).abs().max() == 0


def test_entropy_constant_makes_score_entropy_nonnegative():
    r = torch.tensor([0.1, 1.0, 7.0], dtype=torch.float64)
    for s in torch.linspace(0.01, 10, 50, dtype=torch.float64):
        assert (s - r * s.log() + entropy_constant(r) >= -1e-12).all()


# --------------------------------------------------------------------------- samplers


def test_sedd_tweedie_on_absorb_is_the_masked_ancestral_step():
    """With s_y = r·p_θ(y), the Tweedie step's distribution is MDLM's: reveal with
    (α_s − α_t)/(1 − α_t), drawn from p_θ. Checked exactly, then against MDLM's two-stage draw."""
    g = torch.Generator().manual_seed(0)
    V, mask = 30, 4
    logits = torch.randn(1, 3, V, generator=g, dtype=torch.float64)
    logits[..., mask] = float("-inf")
    log_p = torch.log_softmax(logits, -1)
    x_t = torch.tensor([[mask, 7, mask]])
    a_t, a_s = torch.tensor(0.3, dtype=torch.float64), torch.tensor(0.55, dtype=torch.float64)
    probs = Absorbing(V, mask).tweedie_probs(log_p, x_t, a_t, a_s)  # z = log p_θ, i.e. log s = log(r·p_θ)
    reveal = (a_s - a_t) / (1 - a_t)
    expected = reveal * log_p.exp()
    expected[..., mask] = 1 - reveal
    expected[0, 1] = torch.nn.functional.one_hot(torch.tensor(7), V).double()
    torch.testing.assert_close(probs, expected)

    n = 40000
    x = x_t.expand(n, 3).clone()
    stepped, _ = mdlm.masked_ancestral_step(x, log_p.expand(n, 3, V).float(), a_t, a_s, mask,
                                            torch.Generator().manual_seed(1))
    freq = torch.nn.functional.one_hot(stepped, V).double().mean(0)
    se = (expected * (1 - expected) / n).sqrt()
    assert ((freq - expected).abs() <= 5 * se + 1e-9).all()


def test_sedd_tweedie_on_uniform_with_exact_scores_is_the_exact_reverse_step():
    """One token, a known clean distribution p0: scores p_t(y)/p_t(x_t) fed to Tweedie give Bayes' p(x_s | x_t)."""
    V = 5
    p0 = torch.tensor([0.5, 0.2, 0.15, 0.1, 0.05], dtype=torch.float64)
    a_t, a_s = torch.tensor(0.2, dtype=torch.float64), torch.tensor(0.6, dtype=torch.float64)
    kernel = lambda a: a * torch.eye(V, dtype=torch.float64) + (1 - a) / V  # noqa: E731
    p_t, p_s = p0 @ kernel(a_t), p0 @ kernel(a_s)
    for x_t in range(V):
        exact = p_s * kernel(a_t / a_s)[:, x_t] / p_t[x_t]
        score = (p_t / p_t[x_t]).view(1, 1, V)
        tweedie = Uniform(V).tweedie_probs(score.log(), torch.tensor([[x_t]]), a_t, a_s)[0, 0]
        torch.testing.assert_close(tweedie / tweedie.sum(), exact)


def tiny_sedd(graph: str) -> sedd.SEDD:
    torch.manual_seed(0)
    schedule = "loglinear" if graph == "absorbing" else "geometric"
    params = SEDDParams.model_validate({"model": {"d_model": 32, "n_layers": 2, "n_heads": 2, "seq_len": 12,
                                                  "positions": "learned", "graph": graph, "schedule": schedule}})
    return sedd.build(params, VOCAB).eval()


def tiny_d3pm(graph: str) -> d3pm.D3PM:
    torch.manual_seed(0)
    params = D3PMParams.model_validate({"model": {"d_model": 32, "n_layers": 2, "n_heads": 2, "seq_len": 12,
                                                  "positions": "learned", "graph": graph, "num_train_timesteps": 50,
                                                  "schedule": "linear" if graph == "absorbing" else "cosine"},
                                        "sample": {"steps": 16}})
    return d3pm.build(params, VOCAB).eval()


@pytest.mark.parametrize("graph", ["absorbing", "uniform"])
def test_euler_agrees_with_tweedie_to_first_order(graph):
    """Both discretise the same reverse process: their one-step distributions differ by O(Δt²). On the absorbing
    graph with the log-linear schedule both reveal y with (t − s)/t·e^{z_y} and leave [MASK] the rest (SEDD's
    reference Tweedie step), so they are the same distribution, untrained scores included."""
    model = tiny_sedd(graph)
    x0 = torch.randint(5, 30, (4, 12), generator=torch.Generator().manual_seed(0))
    t = torch.tensor(0.5, dtype=torch.float64)
    x_t = model.graph.corrupt(x0, model.schedule.total(t).expand(4), torch.Generator().manual_seed(1))
    gaps = []
    with torch.no_grad():
        for dt in (0.02, 0.01):
            e = model.euler_probs(x_t, t, t - dt).double()
            w = model.tweedie_probs(x_t, t, t - dt).double()
            gaps.append((e / e.sum(-1, keepdim=True) - w / w.sum(-1, keepdim=True)).abs().max().item())
    if graph == "absorbing":
        assert max(gaps) < 1e-9, gaps
    else:
        assert gaps[1] < gaps[0] / 3 and gaps[0] < 0.05, gaps


def test_jump_draws_from_the_given_distribution():
    probs = torch.tensor([[[0.5, 0.3, 0.2, 0.0]]], dtype=torch.float64).expand(20000, 1, 4) * 3  # unnormalised
    x_t = torch.ones(20000, 1, dtype=torch.long)
    out = jump(probs, x_t, torch.Generator().manual_seed(0))
    freq = torch.bincount(out.flatten(), minlength=4).double() / 20000
    assert (freq - torch.tensor([0.5, 0.3, 0.2, 0.0], dtype=torch.float64)).abs().max() < 0.015
    assert freq[3] == 0


@pytest.mark.parametrize("make", [lambda: tiny_d3pm("absorbing"), lambda: tiny_d3pm("uniform"),
                                  lambda: tiny_sedd("absorbing"), lambda: tiny_sedd("uniform")],
                         ids=["d3pm_absorb", "d3pm_uniform", "sedd_absorb", "sedd_uniform"])
def test_samplers_are_seeded_hold_infill_and_end_without_masks(make):
    model = make()
    sample = d3pm.sample_canvas if isinstance(model, d3pm.D3PM) else sedd.sample_canvas
    known = torch.zeros(3, 12, dtype=torch.bool)
    known[:, 3:5] = True
    tokens = torch.full((3, 12), 9)
    runs = [sample(model, 3, 8, torch.Generator().manual_seed(s), torch.device("cpu"), infill=(known, tokens))
            for s in (0, 0, 1)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])
    assert (runs[0][:, 3:5] == 9).all() and (runs[0][:, 0] == VOCAB.bos_id).all()
    if model.config.graph == "absorbing":
        assert (runs[0] != VOCAB.mask_id).all()  # the last step denoises every position


# --------------------------------------------------------------------------- models


@pytest.mark.parametrize("make", [lambda: tiny_d3pm("absorbing"), lambda: tiny_d3pm("uniform"),
                                  lambda: tiny_sedd("absorbing"), lambda: tiny_sedd("uniform")],
                         ids=["d3pm_absorb", "d3pm_uniform", "sedd_absorb", "sedd_uniform"])
def test_loss_at_initialisation_is_near_log_vocab(make):
    """An untrained denoiser is near-uniform over V tokens; each per-token ELBO estimate (SEDD's loss, D3PM's
    loss without its λ·CE term) starts near log V (log(V−1) where [MASK] is excluded)."""
    model = make()
    x0 = torch.randint(5, 30, (512, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        if isinstance(model, d3pm.D3PM):
            loss = model.token_losses(x0, d3pm.stratified_steps(512, model.num_train_timesteps))[1].mean().item()
        else:
            loss = model.loss(x0).item()
    assert abs(loss - math.log(30)) < 0.12 * math.log(30), loss


def test_uniform_score_entropy_at_zero_scores_matches_its_integral():
    """With s ≡ 1 the expected SEDD-uniform loss is ∫ E[(σ/V)Σ(1 + K(r))] dt, computable by quadrature."""
    V, schedule = 30, Geometric()
    t = torch.linspace(1e-4, 1, 20001, dtype=torch.float64)
    alpha, sigma = schedule.alpha(t), schedule.rate(t)
    a, b = uniform_ratios(alpha, V)
    p_clean = alpha + (1 - alpha) / V
    integrand = sigma / V * (p_clean * (V - 1) * (1 + entropy_constant(a))
                             + (1 - p_clean) * (1 + entropy_constant(b)))
    expected = torch.trapezoid(integrand, t).item()
    g = torch.Generator().manual_seed(0)
    x0 = torch.randint(0, V, (20000, 4), generator=g)
    tt = torch.rand(20000, generator=g, dtype=torch.float64)
    x_t = Uniform(V).corrupt(x0, schedule.total(tt), g)
    mc = score_entropy_uniform(torch.zeros(20000, 4, V, dtype=torch.float64), x0, x_t, schedule.rate(tt),
                               schedule.alpha(tt)).mean().item()
    assert abs(mc - expected) < 0.05 * expected, (mc, expected)


@pytest.mark.parametrize("make", [tiny, lambda: tiny_d3pm("absorbing"), lambda: tiny_sedd("uniform")],
                         ids=["mdlm", "d3pm_absorb", "sedd_uniform"])
def test_elbo_bound_is_positive_and_falls_with_training(make):
    model = make().train()
    x0 = torch.tensor([[1, 10, 11, 12, 13, 2, 0, 0, 0, 0, 0, 0]] * 16)
    before = model.nll_bound(x0, 8, torch.Generator().manual_seed(0)).mean().item()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(120):
        opt.zero_grad()
        model.loss(x0).backward()
        opt.step()
    after = model.nll_bound(x0, 8, torch.Generator().manual_seed(0)).mean().item()
    assert 0 < after < before / 3, (before, after)


def test_d3pm_absorb_with_linear_schedule_is_discrete_time_masked_diffusion():
    """With ᾱ_t = 1 − t/T, D3PM-absorb's T·KL at a masked position is exactly MDLM's
    weight·CE with weight 1/(t/T) = −α′/(1−α): each step reveals x0 with probability 1/t."""
    T = 50
    ab = D3PMSchedule(T, "linear").alphabar()
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 1, 30, generator=g, dtype=torch.float64)
    logits[..., 4] = float("-inf")
    log_pred = torch.log_softmax(logits, -1)
    x0, x_t = torch.tensor([[12]] * 4), torch.tensor([[4]] * 4)
    t = torch.tensor([1, 7, 30, 50])
    kl = T * posterior_kl(log_pred, x0, x_t, ab[t] / ab[t - 1], ab[t - 1], Absorbing(30, 4).stationary())
    mdlm_loss = masked_diffusion_loss(log_pred[:, 0], x0, x_t == 4, 1 / (t.double() / T))
    torch.testing.assert_close(kl, mdlm_loss.double(), rtol=1e-10, atol=1e-12)


def test_sedd_absorb_runs_its_head_at_masked_positions_only_and_agrees_with_the_whole_canvas():
    """The loss, its gradient and the reverse steps equal those computed from the head over every position
    (the graph's maths on the full (B, L, V) scores), and the FLOP count charges the head at half the canvas."""
    model = tiny_sedd("absorbing").train()
    x0 = torch.randint(5, 30, (6, 12), generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0.05, 0.2, 0.4, 0.6, 0.8, 0.99], dtype=torch.float64)

    def whole_canvas_losses():
        x_t = model.graph.corrupt(x0, model.schedule.total(t), torch.Generator().manual_seed(3))
        z = model.graph.score_logits(model.denoiser(x_t, t).float(), x_t)
        return model.graph.score_entropy(z, x0, x_t, model.schedule, t)

    reference = whole_canvas_losses()
    reference.sum().backward()
    reference_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    losses = model.token_losses(x0, t, torch.Generator().manual_seed(3))
    losses.sum().backward()
    torch.testing.assert_close(losses, reference)
    assert (losses > 0).sum() > 20 and torch.isfinite(losses).all()
    for got, want in zip((p.grad for p in model.parameters()), reference_grads):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)

    model.eval()
    x_t = model.graph.corrupt(x0, model.schedule.total(t), torch.Generator().manual_seed(4))
    now, before = torch.tensor(0.5, dtype=torch.float64), torch.tensor(0.45, dtype=torch.float64)
    with torch.no_grad():
        z_all = model.graph.score_logits(model.denoiser(x_t, now.expand(6)).float(), x_t)
        for step in ("euler_probs", "tweedie_probs"):
            want = (model.graph.euler_probs(z_all, x_t, model.schedule, now, before) if step == "euler_probs"
                    else model.graph.tweedie_probs(z_all, x_t, model.schedule.alpha(now), model.schedule.alpha(before)))
            torch.testing.assert_close(getattr(model, step)(x_t, now, before), want)

    body = model.denoiser.flops_per_token(12, training=False) - 2 * model.denoiser.tok_emb.weight.numel()
    assert model.flops_per_token(12, training=False) == pytest.approx(body + model.denoiser.tok_emb.weight.numel(),
                                                                      rel=1e-3)
    uniform = tiny_sedd("uniform")
    assert uniform.flops_per_token(12) == uniform.denoiser.flops_per_token(12)
