"""Autoregressive baseline (``ar``): a causal transformer trained with next-token
cross-entropy. It is also the judge LM for generative perplexity.

Sequences are ``<bos> tokens <eos> <pad>...``; padding after <eos> never
influences earlier positions of a causal model, so no attention mask is needed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from textdiff.params.ar import ARParams
from textdiff.params.shared import BackboneParams
from textdiff.data.vocab import Vocab
from textdiff.eval.context_probe import prefix_swap
from textdiff.nn import BackboneConfig, Transformer
from textdiff.sampling.autoregressive import sample_canvas, sample_sequences

PARAMS = ARParams


def backbone_config(params: BackboneParams, vocab: Vocab) -> BackboneConfig:
    return BackboneConfig.from_params(params, causal=True, vocab_size=vocab.size)


def build_backbone(params: BackboneParams, vocab: Vocab) -> Transformer:
    return Transformer(backbone_config(params, vocab))


def build(params: ARParams, vocab: Vocab) -> Transformer:
    model = build_backbone(params.model, vocab)
    model.vocab = vocab  # its special tokens, as every family's model carries them (not a weight)
    return model


def training_loss(model: Transformer, batch: torch.Tensor, vocab: Vocab) -> torch.Tensor:
    """Mean next-token cross-entropy over non-pad targets.

    The output head runs only at positions with a real target: with a vocabulary
    of thousands it is the most expensive layer, and padding would waste it.
    """
    targets = batch[:, 1:]
    keep = targets != vocab.pad_id
    logits = model.head(model.hidden(batch[:, :-1])[keep])
    return F.cross_entropy(logits.float(), targets[keep])


def generate(model: Transformer, num: int, vocab: Vocab, max_len: int | None = None, temperature: float = 1.0,
             top_p: float = 1.0, generator: torch.Generator | None = None, use_cache: bool = True,
             stats: dict | None = None) -> list[list[int]]:
    """Sample ``num`` sequences from <bos> (the shared left-to-right loop, KV cache on by default); return
    token ids without <bos>, cut before <eos>. Cached and uncached runs draw the same random numbers.
    ``stats['batches']`` collects (sequences, network calls) of the batch."""
    return sample_sequences(model, num, vocab, max_len=max_len, temperature=temperature, top_p=top_p,
                            generator=generator, use_cache=use_cache, stats=stats)


# --------------------------------------------------------------------------- what the stages call


def fit(params, tokenizer, train_texts: list[str], run):
    """Train the AR model on ``train_texts``; return (model, TrainResult). ``run``: a
    ``textdiff.families.contract.RunContext`` (its FLOP budget sets the steps; its space is unused: tokens)."""
    from textdiff.data.batching import training_batches
    from textdiff.training.flops import causal_lm_step_flops
    from textdiff.training.loop import train

    vocab = Vocab.from_tokenizer(tokenizer)
    batch_fn = training_batches(tokenizer, train_texts, params.model.seq_len, params.train.batch_size, run.seed,
                                fixed_length=False)
    torch.manual_seed(run.seed)
    model = build(params, vocab)
    result = train(model, lambda m, b: training_loss(m, b, vocab), batch_fn, params.train, **run.loop_options(),
                   flops_fn=lambda b: causal_lm_step_flops(model, b, vocab.pad_id))
    return model, result


def sample_texts(model: Transformer, tokenizer, params, run) -> tuple[list[str], dict]:
    """Generate ``params.num_samples`` texts in batches; return them and speed figures."""
    from textdiff.sampling.batched import seeded_texts

    from textdiff.training.flops import generation_cost

    vocab = Vocab.from_tokenizer(tokenizer)
    stats: dict = {}
    texts, speed = seeded_texts(
        model, lambda n, gen: generate(model, n, vocab, temperature=params.temperature, top_p=params.top_p,
                                       generator=gen, use_cache=params.use_cache, stats=stats),
        tokenizer, params.num_samples, params.batch_size, seed=run.seed, device=run.device)
    nfe, flops = generation_cost(model, stats["batches"], use_cache=params.use_cache)
    return texts, {**speed, "nfe": nfe, "decoder_nfe": 0, "sample_flops_per_sample": flops}


def likelihood(model: Transformer, tokenizer, texts: list[str], *, device: torch.device,
               batch_size: int = 64, seed: int = 0, **_) -> dict:
    """Exact held-out perplexity: exp(Σ NLL / Σ tokens) over ``<bos> text <eos>``, <eos> counted. Exact given the
    held-out sentences: its interval is the bootstrap over them (no Monte-Carlo error)."""
    from textdiff.eval.heldout_interval import heldout_interval
    from textdiff.eval.judge import ProjectJudge

    nll, counts, _ = ProjectJudge(model, tokenizer, Vocab.from_tokenizer(tokenizer), device, batch_size).score(texts)
    nats = float(nll.sum() / counts.sum())
    return {"heldout_ppl": math.exp(nats), "heldout_ppl_bound": "exact", "heldout_nats_per_token": nats,
            "heldout_tokens": int(counts.sum()), **heldout_interval(nll, counts, None, seed=seed)}


LIKELIHOOD_FOOTING = "tokens"  # the exact likelihood pays for the text's tokens, no padding (textdiff.eval.context_blind)
cache_wall_clock = None  # no network cache that skips denoiser calls (MDLM's claim; textdiff.families.mdlm)


@torch.no_grad()
def context_probe(model: Transformer, x0: torch.Tensor, generator: torch.Generator | None = None) -> dict:
    """The prefix swap (textdiff.eval.context_probe): the second half of each held-out sentence after its own first
    half and after another sentence's; ``value`` is the rise in nats per token."""
    swap = prefix_swap(lambda x: torch.log_softmax(model.head(model.hidden(x)).float(), -1), x0, model.vocab.pad_id)
    return {"probe": "prefix_swap", "graph": "causal", "value": swap["rise"], **swap}


# --------------------------------------------------------------------------- infilling (the handicapped baseline)


CANNOT_INFILL = None
INFILL_HANDICAP = "left to right from the prefix: it never sees the known tokens right of a blank"
CANNOT_GUIDE = "the AR baseline has no attribute guidance here (its unguided samples are the baseline)"


@torch.no_grad()
def draw_canvas(model: Transformer, num: int, params, *, generator: torch.Generator, device: torch.device,
                infill=None, guide=None) -> torch.Tensor:
    """Fill the blanks of ``infill=(known, tokens)`` (num, L) left to right with the shared sampler: a known
    position takes its token, a blank a draw from p(x_i | x_<i) at the row's temperature and top-p; a blank
    drawn as <eos> ends the sentence there (its later blanks become <pad>, its known tokens stay). See
    ``INFILL_HANDICAP``."""
    if guide is not None:
        raise ValueError(f"ar cannot be guided: {CANNOT_GUIDE}")
    if infill is None:
        raise ValueError("ar's draw_canvas fills templates only; sample_texts samples it")
    known, values = infill[0].to(device), infill[1].to(device)
    if known.shape[1] > model.cfg.max_len:
        raise ValueError(f"the canvas ({known.shape[1]} tokens) is longer than the model's {model.cfg.max_len}")
    canvas = sample_canvas(model, num, model.vocab, temperature=params.temperature, top_p=params.top_p,
                           generator=generator, forced=(known, values))
    out = torch.full_like(values, model.vocab.pad_id)
    out[:, : canvas.shape[1]] = canvas
    return torch.where(known, values, out)  # known tokens past the loop's end (every row done) too
