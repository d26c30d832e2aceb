"""D3PM (Austin et al. 2021): discrete-time diffusion over token ids — rows ``d3pm_uniform``, ``d3pm_absorb``.

Composition:
- state: token ids on a fixed canvas ``<bos> tokens <eos> <pad>…`` (as mdlm);
- process: T discrete steps, step t keeps a token with probability 1 − β_t and
  otherwise draws it from the graph's stationary m (``uniform``: any token;
  ``absorbing``: [MASK]); ᾱ_t linear (β_t = 1/(T−t+1)) or cosine
  (textdiff.processes.discrete_time);
- denoiser: the shared bidirectional backbone, conditioned on t/T, predicting
  p̃θ(x0 | x_t) (never [MASK] on the absorbing graph);
- reverse model: p_θ(x_s | x_t) ∝ Σ_{x0} q(x_s, x_t | x0)·p̃θ(x0 | x_t), i.e. the
  closed-form posterior evaluated at p̃θ instead of the one-hot x0;
- loss: the hybrid L_λ = T·KL(q(x_{t−1}|x_t,x0) ‖ p_θ(x_{t−1}|x_t)) + λ·CE, t uniform
  on 1..T (stratified over the batch), per canvas token;
- likelihood: T·E_t[KL] (Monte-Carlo over t) + KL(q(x_T|x0) ‖ m);
- sampler: ancestral steps over a grid of ``steps`` times from T to 0 (the kernel
  between s < t keeps a token with probability ᾱ_t/ᾱ_s, so steps can be skipped);
  the last step, to t = 0, is the denoising step.
"""

from __future__ import annotations

import torch

from textdiff.params.d3pm import D3PMModelParams, D3PMParams
from textdiff.params.shared import DiscreteSampleParams
from textdiff.data.vocab import Vocab
from textdiff.losses.discrete import d3pm_hybrid_loss
from textdiff.nn import BackboneConfig, DenoiserModel, Transformer
from textdiff.processes.discrete import graph_for
from textdiff.processes.discrete_time import D3PMSchedule, integer_time, posterior, posterior_kl, prior_kl
from textdiff.eval.context_probe import discrete_probe
from textdiff.eval.elbo import elbo_perplexity, stratified_bound
from textdiff.sampling.batched import seeded_texts
from textdiff.sampling.discrete_sampler import initial_canvas, reverse_sample
from textdiff.sampling.grid import integer_times
from textdiff.sampling.guidance import Guidance, active, tilted_log_probs
from textdiff.training.fit import canvas_fit
from textdiff.training.flops import denoising_flops

PARAMS = D3PMParams


class D3PM(DenoiserModel):
    def __init__(self, config: D3PMModelParams, vocab: Vocab):
        super().__init__()
        self.config, self.vocab = config, vocab  # the row's model params: all a module is built from
        self.denoiser = Transformer(BackboneConfig.from_params(config, causal=False, vocab_size=vocab.size,
                                                               time_conditioning=True))
        self.graph = graph_for(config.graph, vocab.size, vocab.mask_id)
        self.num_train_timesteps = config.num_train_timesteps
        self.register_buffer("alphabar", D3PMSchedule(config.num_train_timesteps, config.schedule).alphabar(),
                             persistent=False)
        self.register_buffer("stationary", self.graph.stationary(), persistent=False)

    # ---------------------------------------------------------------- denoiser and reverse model

    def x0_logits(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Logits of p̃θ(x0 | x_t) (B, L, V) at integer times t (B,); −inf at [MASK] on the absorbing graph."""
        return self.graph.restrict_x0(self.denoiser(x_t, t.double() / self.num_train_timesteps).float())

    def x0_log_probs(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.x0_logits(x_t, t), dim=-1)

    def x0_log_probs_at_share(self, x_t: torch.Tensor, share: float) -> torch.Tensor:
        """(B, L, V) log p̃θ(x0 | x_t) at the integer step whose corrupted share 1 − ᾱ_t is closest to ``share``
        (the probes of textdiff.eval.context_probe)."""
        step = int(torch.argmin((1 - self.alphabar[1:] - share).abs())) + 1
        return self.x0_log_probs(x_t, torch.full((x_t.shape[0],), step, dtype=torch.long, device=x_t.device))

    def reverse_probs(self, x_t: torch.Tensor, t: torch.Tensor, s: torch.Tensor,
                      guide: Guidance | None = None) -> torch.Tensor:
        """p_θ(x_s | x_t) between integer times s < t (B,): the posterior at p̃θ(x0 | x_t), (B, L, V), unnormalised.
        ``guide`` tilts p̃θ(x0 | x_t) toward an attribute first (textdiff.sampling.guidance)."""
        a_t, a_s = self.alphabar[t], self.alphabar[s]
        logits = self.x0_logits(x_t, t)
        x0_probs = tilted_log_probs(torch.log_softmax(logits, -1), guide).exp() if active(guide) else torch.softmax(logits, -1)
        return posterior(x0_probs, x_t, a_t / a_s, a_s, self.stationary, normalise=False)

    # ---------------------------------------------------------------- loss and ELBO

    def corrupt(self, x0: torch.Tensor, t: torch.Tensor, generator=None) -> torch.Tensor:
        """x_t ~ q(x_t | x0) = Cat(ᾱ_t·x0 + (1−ᾱ_t)·m)."""
        return self.graph.corrupt(x0, -torch.log(self.alphabar[t]), generator)

    def token_losses(self, x0: torch.Tensor, t: torch.Tensor, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(L_λ, ELBO term) per token, (B, L), at integer times t (B,) in 1..T."""
        x_t = self.corrupt(x0, t, generator)
        log_x0 = self.x0_log_probs(x_t, t)
        a_t, a_s = self.alphabar[t], self.alphabar[t - 1]
        kl = posterior_kl(log_x0, x0, x_t, a_t / a_s, a_s, self.stationary)
        return d3pm_hybrid_loss(kl, log_x0, x0, self.num_train_timesteps, self.config.hybrid_lambda)

    def loss(self, x0: torch.Tensor) -> torch.Tensor:
        return self.token_losses(x0, stratified_steps(x0.shape[0], self.num_train_timesteps, x0.device))[0].mean()

    @torch.no_grad()
    def nll_bound(self, x0: torch.Tensor, draws: int, generator: torch.Generator | None = None,
                  per_draw: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Per-sequence upper bound on −log p(x0) in nats: T·E_t[KL] over ``draws`` stratified t, plus the prior.

        ``per_draw=True`` also returns the (B, draws) single-draw estimates (prior + T·KL at
        that draw's t) whose mean is the bound; the bound and the random draws are the same.
        """
        prior = prior_kl(x0, self.alphabar[-1].item(), self.stationary).sum(1)
        return stratified_bound(lambda x, t, g: self.token_losses(x, t, g)[1], x0, draws,
                                lambda frac: integer_time(frac, self.num_train_timesteps), generator, prior, per_draw)


def stratified_steps(batch: int, num_train_timesteps: int, device=None, generator=None) -> torch.Tensor:
    """Integer t in 1..T, one per sequence, spread evenly over the batch from one uniform offset."""
    u = torch.rand(1, generator=generator, device=device, dtype=torch.float64)
    return integer_time((u + torch.arange(batch, device=device, dtype=torch.float64) / batch) % 1.0, num_train_timesteps)


def build(params: D3PMParams, vocab: Vocab) -> D3PM:
    return D3PM(params.model, vocab)


# --------------------------------------------------------------------------- sampling


@torch.no_grad()
def sample_canvas(model: D3PM, num: int, steps: int, generator: torch.Generator, device: torch.device,
                  infill: tuple[torch.Tensor, torch.Tensor] | None = None,
                  guide: Guidance | None = None) -> torch.Tensor:
    """Ancestral sampling from the prior x_T; returns the (num, L) canvas."""
    x, known, values = initial_canvas(num, model.config.seq_len, model.vocab, model.graph.prior, generator,
                                      device, infill)

    def step_probs(x_t: torch.Tensor, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return model.reverse_probs(x_t, t.expand(x_t.shape[0]), s.expand(x_t.shape[0]), guide)

    return reverse_sample(step_probs, x, known, values, integer_times(model.num_train_timesteps, steps, device), generator)


def generate(model: D3PM, num: int, steps: int, generator: torch.Generator, device: torch.device,
             infill: tuple[torch.Tensor, torch.Tensor] | None = None) -> list[list[int]]:
    return [model.vocab.strip(row) for row in sample_canvas(model, num, steps, generator, device, infill).tolist()]


# --------------------------------------------------------------------------- what the stages call


fit = canvas_fit(build)
CANNOT_INFILL = CANNOT_GUIDE = None  # known tokens are held by the reverse loop; guidance tilts p̃θ(x0 | x_t)


def draw_canvas(model: D3PM, num: int, params: DiscreteSampleParams, *, generator: torch.Generator,
                device: torch.device, infill=None, guide: Guidance | None = None) -> torch.Tensor:
    """(num, L) canvases under the row's sample params, with known tokens and/or guidance (textdiff.tasks)."""
    return sample_canvas(model, num, params.steps, generator, device, infill, guide)


def sample_texts(model: D3PM, tokenizer, params: DiscreteSampleParams, run) -> tuple[list[str], dict]:
    texts, speed = seeded_texts(model, lambda n, gen: generate(model, n, params.steps, gen, run.device), tokenizer,
                                params.num_samples, params.batch_size, seed=run.seed, device=run.device)
    nfe = len(integer_times(model.num_train_timesteps, params.steps)) - 1
    return texts, {**speed, "steps": params.steps, "nfe": nfe, "decoder_nfe": 0,
                   "sample_flops_per_sample": denoising_flops(model, model.config.seq_len, nfe)}


likelihood = elbo_perplexity  # the ELBO perplexity bound on the AR's token count (textdiff.eval.elbo)
LIKELIHOOD_FOOTING = "canvas"  # the bound pays for every canvas position (textdiff.eval.context_blind)
context_probe = discrete_probe  # masked NLL by share (absorbing) or partner swap (uniform): textdiff.eval.context_probe
cache_wall_clock = None  # no network cache that skips denoiser calls (MDLM's claim; textdiff.families.mdlm)
