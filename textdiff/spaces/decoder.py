"""The trained decoder of the encoder-space rows: (noised) standardised MiniLM features → MiniLM tokens.

A few bidirectional transformer layers over the feature canvas and a head over
the MiniLM vocabulary, trained with cross-entropy at the real positions ([CLS] …
[SEP]) on features noised by the row's own Gaussian process at small times
t ~ U[0, t_max] (TEncDM: ≈ 0.15), so that it forgives the residual noise of a
sampled x̂0. Decoding takes the argmax and cuts at the first [SEP].

Two choices make it trainable in minutes on a CPU:
- its vocabulary is the MiniLM ids that occur in the training split (about 14k of
  30,522): a token never seen in training could not be learned anyway, and the
  softmax shrinks by half;
- the head scores a 384-dim vector v against MiniLM's own input embeddings e of
  those ids (initialised from them, then trained) by their negative squared
  distance, s · (v·e − ‖e‖²/2) + b, and v is the un-standardised input feature
  plus the transformer's correction (whose output projection starts at zero). At
  initialisation it is nearest-embedding decoding, which is already right for most
  tokens of the embedding space and a useful start for the encodings (measured on
  2,000 training and 300 held-out sentences: held-out token accuracy 0.74 clean and
  0.51 at t = 0.05, where the plain dot product v·e decodes 0.62 and 0.42).

Under a FLOP budget the decoder trains for a few dozen steps or fewer, so its start
must already be a good model, not only a good argmax. The encodings' distances to
the embeddings are large and alike, so at s = 1 the softmax is nearly flat (CE ≈ 6.8
nats); Adam's first updates, about the lr for every weight whatever its gradient,
then spend themselves sharpening it through the correction and the embeddings and
lose the argmax (at lr 1e-3 with no warmup, 9 and 23 steps took accuracy at
t = 0.05 from 0.42 to 0.16 and 0.11). So the scale s (a learned scalar) is
calibrated before the first step, to the value that minimises the loss on the
first training batch (s ≈ e², CE ≈ 2.9; e^3.9 for the embeddings); from there the
same 9 / 23 / 45 steps raise accuracy at t = 0.05 to 0.68 / 0.74 / 0.78. The
padding positions (zero vectors) are left out of the loss: they were half of it,
all pulled towards one class (``index_of`` maps [PAD] to the smallest id, [CLS]),
and decoding does not need them: it cuts at the first [SEP], which the trained
decoder finds (after 9–45 steps 0–5 % of clean held-out sentences, 5–13 % at
t = 0.05, decode more than two tokens too long; training the pads as well did no
better at t = 0.05 and cost accuracy).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from textdiff.params.encoder import DecoderParams
from textdiff.data.batching import batch_indices
from textdiff.io import atomic_path, read_json, write_json
from textdiff.nn import BackboneConfig, Transformer
from textdiff.processes.gaussian import GaussianProcess
from textdiff.spaces.minilm import Canvas, FeatureCache, minilm_model, minilm_tokenizer, unstandardise
from textdiff.training.checkpoint import state_dict_for_saving
from textdiff.training.flops import canvas_step_flops
from textdiff.training.loop import TrainResult, train


class FeatureDecoder(nn.Module):
    """Standardised features (B, L, D) → logits over ``vocab_ids`` (MiniLM ids) at every position."""

    def __init__(self, params: DecoderParams, seq_len: int, vocab_ids: torch.Tensor, mean: torch.Tensor,
                 std: torch.Tensor):
        super().__init__()
        self.params, self.seq_len = params, seq_len
        dim = mean.numel()
        m = params.model
        self.net = Transformer(BackboneConfig(d_model=m.d_model, n_layers=m.n_layers, n_heads=m.n_heads,
                                              max_len=seq_len, dropout=m.dropout, input_dim=dim, output_dim=dim))
        nn.init.zeros_(self.net.out_proj.weight)  # starts as nearest-embedding decoding of the input
        self.register_buffer("vocab_ids", vocab_ids.long())
        self.register_buffer("mean", mean.float())
        self.register_buffer("std", std.float())
        self.token_embeddings = nn.Parameter(torch.zeros(len(vocab_ids), dim))
        self.bias = nn.Parameter(torch.zeros(len(vocab_ids)))
        self.log_scale = nn.Parameter(torch.zeros(()))  # of the logits; set by calibrate_scale before training

    def init_from_minilm(self) -> "FeatureDecoder":
        with torch.no_grad():
            self.token_embeddings.copy_(minilm_model().embeddings.word_embeddings.weight[self.vocab_ids])
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_scale.exp() * self.closeness(x) + self.bias

    def closeness(self, x: torch.Tensor) -> torch.Tensor:
        """v·e − ‖e‖²/2 = (‖v‖² − ‖v − e‖²)/2 for every id: the unscaled logits, ranked as by distance."""
        vec = unstandardise(x, self.mean, self.std) + self.net(x)
        emb = self.token_embeddings
        return vec @ emb.T - 0.5 * (emb * emb).sum(-1)

    def noised(self, batch: Canvas, process: GaussianProcess, generator: torch.Generator | None = None
               ) -> torch.Tensor:
        """The batch's features noised at t ~ U[0, noise_t_max]."""
        x0 = batch.x0
        t = torch.rand(x0.shape[0], generator=generator, device=x0.device, dtype=torch.float64)
        noise = torch.randn(x0.shape, generator=generator, device=x0.device)
        return process.q_sample(x0, t * self.params.noise_t_max, noise)

    @torch.no_grad()
    def calibrate_scale(self, batch: Canvas, process: GaussianProcess, generator: torch.Generator | None = None,
                        iterations: int = 24) -> float:
        """Set ``log_scale`` to the minimiser of the training loss on ``batch`` over the scale alone
        (bisection on log s: the loss is convex in s, its derivative E_softmax[l] − l_target increases
        with s). One forward pass; returns the loss at that scale. 24 halvings of [−8, 12] leave log s
        within 1.2e-6 (40 in float64 took half a minute of a decoder stage over ~14k ids)."""
        real = batch.ids != minilm_tokenizer().pad_token_id
        logits = self.closeness(self.noised(batch, process, generator))[real]
        bias, target = self.bias, self.index_of(batch.ids[real])
        at_target = logits.gather(1, target[:, None])[:, 0]

        def slope(log_s: float) -> float:
            probs = torch.softmax(math.exp(log_s) * logits + bias, -1)
            return ((probs * logits).sum(-1) - at_target).mean().item()

        lo, hi = -8.0, 12.0
        for _ in range(iterations):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if slope(mid) < 0 else (lo, mid)
        self.log_scale.fill_((lo + hi) / 2)
        return F.cross_entropy(self.log_scale.exp() * logits + bias, target).item()

    def ids_of(self, logits: torch.Tensor) -> torch.Tensor:
        return self.vocab_ids[logits.argmax(-1)]

    def loss(self, batch: Canvas, process: GaussianProcess) -> torch.Tensor:
        """CE of the tokens ([CLS] … [SEP], not the padding) given their features noised at
        t ~ U[0, noise_t_max]."""
        real = batch.ids != minilm_tokenizer().pad_token_id
        return F.cross_entropy(self(self.noised(batch, process))[real], self.index_of(batch.ids[real]))

    def index_of(self, ids: torch.Tensor) -> torch.Tensor:
        """Positions of MiniLM ids in ``vocab_ids`` (every id of the training split is there; [PAD] is not)."""
        return torch.searchsorted(self.vocab_ids, ids)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def flops_per_token(self, seq_len: int, training: bool = True) -> float:
        """The transformer's correction plus the head that scores a feature vector against every id of
        ``vocab_ids`` (the larger part: about 14k × 384 for MiniLM)."""
        fwd = self.net.flops_per_token(seq_len, training=False) + 2 * self.token_embeddings.numel()
        return 3 * fwd if training else fwd


def strip_wordpiece(ids: list[int]) -> list[int]:
    """Ids of the text: cut at the first [SEP], drop [CLS] and [PAD]."""
    tok = minilm_tokenizer()
    if tok.sep_token_id in ids:
        ids = ids[: ids.index(tok.sep_token_id)]
    return [i for i in ids if i not in (tok.cls_token_id, tok.pad_token_id)]


@torch.no_grad()
def decode(decoder: FeatureDecoder, x0: torch.Tensor) -> list[list[int]]:
    """Standardised features (B, L, D) → text ids per row."""
    return [strip_wordpiece(row) for row in decoder.ids_of(decoder(x0)).tolist()]


@torch.no_grad()
def accuracy(decoder: FeatureDecoder, canvas: Canvas, process: GaussianProcess, t: float,
             generator: torch.Generator | None = None, chunk_size: int = 64) -> dict:
    """Token accuracy over the real tokens ([CLS] … [SEP]) and the exact-match rate of the decoded texts,
    from features noised at time ``t`` (0 = clean)."""
    x0 = canvas.x0
    noise = torch.randn(x0.shape, generator=generator, device=x0.device)
    x_t = process.q_sample(x0, torch.full((x0.shape[0],), t, dtype=torch.float64, device=x0.device), noise)
    # in chunks of sentences: the logits of a whole test split over ~14k ids are gigabytes
    pred = torch.cat([decoder.ids_of(decoder(chunk)) for chunk in x_t.split(chunk_size)])
    real = canvas.ids != minilm_tokenizer().pad_token_id
    token_acc = ((pred == canvas.ids) & real).sum().item() / real.sum().item()
    exact = [strip_wordpiece(p) == strip_wordpiece(r) for p, r in zip(pred.tolist(), canvas.ids.tolist())]
    return {"t": t, "alpha_bar": float(process.alpha_bar(torch.tensor([t]))), "token_accuracy": token_acc,
            "exact_match": sum(exact) / len(exact), "sentences": len(exact)}


def fit_decoder(params: DecoderParams, cache: FeatureCache, process: GaussianProcess, seq_len: int, *, seed: int,
                device: torch.device, checkpoint_dir=None, fingerprint: str = "", log=None, progress: bool = True,
                stop_after: int | None = None, budget_flops: float | None = None
                ) -> tuple[FeatureDecoder, TrainResult]:
    """Train the decoder (``budget_flops``: the row's FLOP budget, which with ``params.train.budget_share``
    sets the steps; textdiff.training.flops)."""
    lengths = cache.lengths()
    torch.manual_seed(seed)
    decoder = FeatureDecoder(params, seq_len, cache.ids.long().unique(), cache.mean, cache.std).init_from_minilm()
    first = cache.canvas(batch_indices(lengths, params.train.batch_size, 0, seed), seq_len)
    decoder.calibrate_scale(first, process, torch.Generator().manual_seed(seed))  # (a resumed run loads its own)
    result = train(decoder, lambda m, b: m.loss(b, process),
                   lambda step: cache.canvas(batch_indices(lengths, params.train.batch_size, step, seed), seq_len),
                   params.train, checkpoint_dir=checkpoint_dir, fingerprint=fingerprint, device=device, log=log,
                   progress=progress, stop_after=stop_after, budget_flops=budget_flops,
                   flops_fn=lambda b: canvas_step_flops(decoder, b))
    return decoder, result


def save_decoder(folder: str | Path, decoder: FeatureDecoder) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "decoder.safetensors") as tmp:
        save_file(state_dict_for_saving(decoder), str(tmp))
    write_json(folder / "decoder.json", {"params": decoder.params.model_dump(mode="json"), "seq_len": decoder.seq_len,
                                          "vocab_size": len(decoder.vocab_ids), "feature_dim": decoder.net.cfg.input_dim})


def load_decoder(folder: str | Path, device: torch.device | str = "cpu") -> FeatureDecoder:
    folder = Path(folder)
    weights = folder / "decoder.safetensors"
    if not weights.exists():
        raise FileNotFoundError(f"no trained decoder at {weights} (run the row's decoder stage first)")
    meta = read_json(folder / "decoder.json")
    dim = meta["feature_dim"]
    decoder = FeatureDecoder(DecoderParams.model_validate(meta["params"]), meta["seq_len"],
                             torch.zeros(meta["vocab_size"], dtype=torch.long), torch.zeros(dim), torch.ones(dim))
    decoder.load_state_dict(load_file(str(weights), device=str(device)))
    return decoder.to(device).eval()
