"""Encoder-space diffusion (``encoder``, ``encoder_emb``): TEncDM.

Composition:
- space: the frozen all-MiniLM-L6-v2 features of each WordPiece token, per-dimension
  standardised with training-set statistics (textdiff.spaces.minilm). The row
  ``encoder`` uses the contextual encodings (last hidden states), ``encoder_emb``
  MiniLM's input token embeddings: TEncDM's "encodings vs embeddings" comparison.
  The space stage caches the features of the training split once;
- process: the shared Gaussian process, tan-d schedule (d = 9) by default;
- denoiser: the shared bidirectional backbone over the 384-dim canvas,
  time-conditioned, with the shared self-conditioning input, trained with x0-MSE
  over the whole canvas (padding positions are the zero vector, the mean);
- sampler: the shared Gaussian reverse loop (no clamping: there is no table to
  clamp to); x̂0 goes through the space's trained decoder (its own stage,
  textdiff.spaces.decoder) and is cut at the first [SEP].

Generated text is MiniLM's lowercased WordPiece, detokenised.
"""

from __future__ import annotations

import torch

from textdiff.params.encoder import EncoderModelParams, EncoderParams
from textdiff.params.shared import ContinuousSampleParams
from textdiff.data.batching import batch_indices
from textdiff.data.vocab import Vocab
from textdiff.nn.vector_diffusion import VectorDiffusion
from textdiff.sampling.batched import seeded_texts
from textdiff.sampling.gaussian_sampler import sample, sampler_config
from textdiff.spaces.decoder import FeatureDecoder, decode
from textdiff.spaces.minilm import FEATURE_DIM, Canvas, minilm_tokenizer
from textdiff.training.flops import canvas_step_flops, denoising_flops
from textdiff.training.loop import train

PARAMS = EncoderParams


class EncoderDiffusion(VectorDiffusion):
    """The shared vector diffusion (textdiff/nn/vector_diffusion.py) on MiniLM's FEATURE_DIM-vectors."""

    def __init__(self, config: EncoderModelParams):
        super().__init__(config, FEATURE_DIM)

    def loss(self, batch: Canvas) -> torch.Tensor:
        return self.vector_loss(batch.x0)


def build(params: EncoderParams, vocab: Vocab | None = None) -> EncoderDiffusion:
    return EncoderDiffusion(params.model)


# --------------------------------------------------------------------------- sampling


@torch.no_grad()
def generate(model: EncoderDiffusion, decoder: FeatureDecoder, num: int, params: ContinuousSampleParams,
             generator: torch.Generator, device: torch.device,
             infill: tuple[torch.Tensor, torch.Tensor] | None = None) -> list[list[int]]:
    """Sample standardised feature canvases and decode them to MiniLM ids (without [CLS]/[SEP]/[PAD])."""
    cfg = sampler_config(params, model.denoiser)
    x0 = sample(model.predict_x0, model.process, (num, model.config.seq_len, FEATURE_DIM), cfg,
                generator=generator, device=device, infill=infill)
    return decode(decoder, x0)


class WordPieceText:
    """MiniLM's tokenizer for ``seeded_texts``: decodes with its clean-up of spaces before punctuation."""

    def batch_decode(self, ids: list[list[int]], **_) -> list[str]:
        return minilm_tokenizer().batch_decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=True)


# --------------------------------------------------------------------------- what the stages call


CANNOT_INFILL = ("its state is the frozen MiniLM's features on WordPiece tokens (contextual encodings of the "
                 "whole sentence, or input embeddings of another tokenizer), so a known project token has no "
                 "fixed value to hold; not built")
CANNOT_GUIDE = ("its decoder maps MiniLM features to WordPiece text, with no project-token distribution for the "
                "attribute classifier to read; not built")


def fit(params: EncoderParams, tokenizer, train_texts: list[str], run):
    """Train on the space stage's cached features (``run.space``, a FeatureSpace), not on ``train_texts``
    directly; ``run.budget_flops`` sets the steps (textdiff.training.flops)."""
    run.space.check(params.space)
    cache, seed = run.space.features, run.seed
    lengths, seq_len, batch_size = cache.lengths(), params.model.seq_len, params.train.batch_size
    torch.manual_seed(seed)
    model = build(params)
    result = train(model, lambda m, b: m.loss(b),
                   lambda step: cache.canvas(batch_indices(lengths, batch_size, step, seed), seq_len), params.train,
                   **run.loop_options(), flops_fn=lambda b: canvas_step_flops(model, b))
    return model, result


def sample_texts(model: EncoderDiffusion, tokenizer, params: ContinuousSampleParams, run) -> tuple[list[str], dict]:
    """``tokenizer`` (the project's) is unused: the texts come from MiniLM's WordPiece ids, through the space's
    trained decoder."""
    decoder, device = run.space.decoder(run.device), run.device
    texts, speed = seeded_texts(model, lambda n, gen: generate(model, decoder, n, params, gen, device),
                                WordPieceText(), params.num_samples, params.batch_size, seed=run.seed, device=device)
    L = model.config.seq_len
    flops = denoising_flops(model, L, params.steps) + denoising_flops(decoder, L, 1)  # then one decoder pass
    return texts, {**speed, "nfe": params.steps, "decoder_nfe": 1, "sample_flops_per_sample": flops,
                   "tokens": "MiniLM WordPiece"}


def likelihood(model: EncoderDiffusion, tokenizer, texts: list[str], *, device: torch.device, **_) -> dict:
    """Not computed: the model's bound would be over MiniLM features, not over the text's tokens."""
    return {"heldout_ppl": None, "heldout_ppl_bound": "not computed for encoder-space diffusion"}


LIKELIHOOD_FOOTING = None  # no token likelihood: the learned check (textdiff.report.learned) reads its decoder's accuracy at t = 0 and its samples against the noise floor
context_probe = None
cache_wall_clock = None  # no network cache that skips denoiser calls (MDLM's claim; textdiff.families.mdlm)
