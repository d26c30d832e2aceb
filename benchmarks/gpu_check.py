"""What one accelerator (or this CPU) does with a params profile: measured matmul peak, training tokens/s and
MFU of every row, sampling tokens/s against AR with and without its KV cache, and FAISS against torch rounding.

    python benchmarks/gpu_check.py [--profile gpu | --profile none] [--params params.yaml] [--device auto] [--steps 8]

Every row is built at the profile's sizes with a random (untrained) initialisation and fed synthetic batches of
its own kind (token canvases, MiniLM-sized feature canvases, latents), so no pipeline stage has to run first.
MFU = (the family's counted training FLOPs per step / median step time) / the dense matmul peak measured here in
the precision the profile trains in (``train.precision``: bf16 on CUDA by default). Sampling is timed with each
row's own sampler at the profile's ``sample.steps`` for the families that draw token canvases (the encoder and
latent rows need a trained decoder or autoencoder and are left out; AR is timed apart, with and without its KV
cache). Prints medians; nothing is written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from textdiff.config import load_params
from textdiff.params.base import read_yaml
from textdiff.data.vocab import Vocab
from textdiff.device import autocast, resolve_device
from textdiff.families import get_family
from textdiff.profiles import profiled_params
from textdiff.spaces.minilm import FEATURE_DIM, Canvas
from textdiff.spaces.registry import kind_of
from textdiff.training.flops import canvas_step_flops, causal_lm_step_flops
from textdiff.training.loop import make_optimizer
from textdiff.training.peak import matmul_peak, median_seconds


def synthetic_batch(section, vocab: Vocab, batch: int, device: torch.device, generator: torch.Generator):
    """A training batch of the row's kind, on the profile's canvas."""
    L, kind = section.model.seq_len, kind_of(section.space)
    if kind == "features":
        ids = torch.randint(1000, 2000, (batch, L), generator=generator)
        return Canvas(ids, torch.randn(batch, L, FEATURE_DIM, generator=generator)).to(device)
    if kind == "latent":
        return torch.randn(batch, L, section.space.latent_dim, generator=generator).to(device)
    ids = torch.randint(4, vocab.size, (batch, L), generator=generator)
    ids[:, 0] = vocab.bos_id
    return ids.to(device)


def training_point(family, section, vocab: Vocab, batch: int, steps: int, device: torch.device) -> dict:
    torch.manual_seed(0)
    model = family.build(section, vocab).to(device).train()
    if section.family == "ar":
        loss_fn, flops_fn = (lambda b: family.training_loss(model, b, vocab)), \
            (lambda b: causal_lm_step_flops(model, b, vocab.pad_id))
    else:
        loss_fn, flops_fn = (lambda b: model.loss(b)), (lambda b: canvas_step_flops(model, b))
    opt = make_optimizer(model, section.train)
    data = synthetic_batch(section, vocab, batch, device, torch.Generator().manual_seed(0))

    def step():
        with autocast(device, section.train.precision):
            loss = loss_fn(data)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    seconds = median_seconds(step, device, steps)
    return {"model": model, "seconds": seconds, "tokens_per_s": batch * section.model.seq_len / seconds,
            "flops_per_s": flops_fn(data) / seconds}


def sampling_tokens_per_s(family, model, section, num: int, device: torch.device) -> float | None:
    """Canvas positions written per second by the row's own sampler (None where it needs a trained space)."""
    if section.family == "ar" or not hasattr(family, "draw_canvas") or kind_of(section.space) != "tokens":
        return None
    model.eval()
    params = section.sample
    seconds = median_seconds(lambda: family.draw_canvas(model, num, params, generator=torch.Generator(
        device=device).manual_seed(0), device=device), device, repeats=2, warmup=1)
    return num * section.model.seq_len / seconds


def ar_generation(section, vocab: Vocab, num: int, device: torch.device) -> dict[str, float]:
    from textdiff.families import ar

    torch.manual_seed(0)
    model = ar.build(section, vocab).to(device).eval()
    out, written = {}, []

    def draw(cache: bool):
        written[:] = ar.generate(model, num, vocab, max_len=section.model.seq_len, use_cache=cache,
                                 generator=torch.Generator(device=device).manual_seed(0))

    for cache in (True, False):  # the same seed: the same sequences either way
        seconds = median_seconds(lambda: draw(cache), device, repeats=2, warmup=1)
        out["kv_cache" if cache else "no_cache"] = sum(len(ids) + 1 for ids in written) / seconds
    return out


def rounding(device: torch.device, vocab: int, dim: int, queries: int) -> dict[str, float]:
    from textdiff.sampling.rounding import NearestEmbedding

    table = torch.randn(vocab, dim, device=device)
    q = table[torch.randint(vocab, (queries,))] + 0.1 * torch.randn(queries, dim, device=device)
    out = {}
    for backend in ("faiss", "torch"):
        nearest = NearestEmbedding(backend)
        out[backend] = median_seconds(lambda: nearest(q, table), device, repeats=5)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml", help="the base params")
    parser.add_argument("--profile", default="gpu", help="a profile applied over them (profiles/NAME.yaml), or none")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=8, help="timed training steps per row (after 2 warm-up)")
    parser.add_argument("--batch", type=int, default=None, help="training batch (default: the profile's)")
    parser.add_argument("--samples", type=int, default=64, help="sequences per timed sampling call")
    parser.add_argument("--rows", nargs="*", help="only these rows")
    args = parser.parse_args()
    p = load_params(args.params) if args.profile == "none" else \
        profiled_params(read_yaml(Path(args.params)), args.profile)
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"{args.params} with profile {args.profile} on {device} ({name}), torch {torch.__version__}, {torch.get_num_threads()} threads")
    peaks = {"fp32": matmul_peak(device, torch.float32), "bf16": matmul_peak(device, torch.bfloat16)}
    print(f"measured dense matmul peak: fp32 {peaks['fp32'] / 1e12:.2f} TFLOP/s, bf16 {peaks['bf16'] / 1e12:.2f}")
    vocab = Vocab(p.tokenizer.vocab_size, 0, 1, 2, 3)
    rows = args.rows or list(p.row_families)
    print(f"\n{'row':>15} {'params':>8} {'prec':>5} {'step ms':>8} {'train tok/s':>12} {'TFLOP/s':>8} {'MFU':>5} "
          f"{'sample tok/s':>13} {'steps':>6}")
    ar_section = None
    for row in rows:
        section = p.row(row)
        family = get_family(section.family)
        batch = args.batch or section.train.batch_size
        point = training_point(family, section, vocab, batch, args.steps, device)
        bf16 = section.train.precision == "bf16" or (section.train.precision == "auto" and device.type == "cuda")
        precision = "bf16" if bf16 else "fp32"
        sampled = sampling_tokens_per_s(family, point["model"], section, args.samples, device)
        steps = getattr(section.sample, "steps", "–")
        print(f"{row:>15} {point['model'].num_parameters() / 1e6:>7.2f}M {precision:>5} {point['seconds'] * 1e3:>8.1f} "
              f"{point['tokens_per_s']:>12,.0f} {point['flops_per_s'] / 1e12:>8.2f} "
              f"{point['flops_per_s'] / peaks[precision]:>5.0%} "
              f"{'–' if sampled is None else format(sampled, ',.0f'):>13} {steps:>6}")
        if section.family == "ar":
            ar_section = section
        del point
    if ar_section is not None:
        gen = ar_generation(ar_section, vocab, args.samples, device)
        print(f"\nAR generation (the sampling reference): {gen['kv_cache']:,.0f} tokens/s with the KV cache, "
              f"{gen['no_cache']:,.0f} without ({gen['kv_cache'] / gen['no_cache']:.1f}x)")
    table = rounding(device, 30522, 128, 4096)
    print(f"rounding 4096 queries to the nearest of 30522 x 128 embeddings: faiss {table['faiss'] * 1e3:.1f} ms, "
          f"torch {table['torch'] * 1e3:.1f} ms ({table['torch'] / table['faiss']:.1f}x); faiss runs on the GPU "
          "only where faiss-gpu is installed (pip install -e '.[gpu]')")


if __name__ == "__main__":
    main()
