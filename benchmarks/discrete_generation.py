"""Generation speed of the discrete samplers against the AR sampler with its KV cache, in one run.

Rows (each the median of --repeats batches of --samples sequences, the same
seeds for every row): AR with the KV cache; the masked (MDLM) ancestral
sampler with and without its cache at --mdlm-steps; SEDD-absorb and
SEDD-uniform (Tweedie) and D3PM at each of --steps. Uses the pipeline's
trained models under models/ (the same backbone size and sequence length for
every row), so the generated lengths are real. tokens/s counts text tokens
plus one <eos> per sample.

    python benchmarks/discrete_generation.py [--samples 64] [--repeats 3] [--steps 32 128] [--mdlm-steps 128 512]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from textdiff.data.tokenizer import load_tokenizer
from textdiff.data.vocab import Vocab
from textdiff.device import resolve_device
from textdiff.families import ar, d3pm, mdlm, sedd
from textdiff.persist import load_model


def timed(generate, samples: int, repeats: int, device) -> tuple[float, int]:
    times, tokens = [], 0
    for r in range(repeats):
        gen = torch.Generator(device=device).manual_seed(r)
        t0 = time.perf_counter()
        out = generate(samples, gen)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        tokens = sum(len(s) + 1 for s in out)
    return statistics.median(times), tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--mdlm-steps", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    needed = ["ar", "mdlm", "sedd_absorb", "sedd_uniform", "d3pm_absorb"]
    missing = [m for m in needed if not Path(f"models/{m}/model.safetensors").exists()]
    if missing:
        raise SystemExit(f"train these first (dvc repro): {', '.join(f'models/{m}' for m in missing)}")
    vocab = Vocab.from_tokenizer(load_tokenizer("data/tokenizer"))
    models = {m: load_model(f"models/{m}", device)[0] for m in needed}
    print(f"device {device}; {args.samples} samples per batch, median of {args.repeats}")
    for name, model in models.items():
        seq = model.cfg.max_len if name == "ar" else model.config.seq_len
        print(f"  {name}: {model.num_parameters() / 1e6:.2f}M params, sequence length {seq}")

    rows = []

    def run(label: str, nfe: str, generate) -> None:
        wall, tokens = timed(generate, args.samples, args.repeats, device)
        rows.append((label, nfe, wall, tokens / wall))
        print(f"  {label:<34} {nfe:>10}  {wall:7.2f}s  {tokens / wall:8,.0f} tokens/s", flush=True)

    print(f"  {'sampler':<34} {'NFE/seq':>10}  {'batch':>8}  {'tokens/s':>15}")
    run("ar, KV cache", "≤ length", lambda n, g: ar.generate(models["ar"], n, vocab, generator=g, use_cache=True))
    for steps in args.mdlm_steps:
        for cache in (True, False):
            stats: dict = {}

            def masked(n, g, steps=steps, cache=cache, stats=stats):
                return mdlm.generate(models["mdlm"], n, steps, g, device, use_cache=cache, stats=stats)

            run(f"mdlm {steps} steps, cache {'on' if cache else 'off'}", "", masked)
            rows[-1] = (*rows[-1][:1], f"{stats['nfe'] / args.repeats:.1f}", *rows[-1][2:])
    for steps in args.steps:
        for name in ("sedd_absorb", "sedd_uniform"):
            run(f"{name} tweedie {steps} steps", str(steps),
                lambda n, g, name=name, steps=steps: sedd.generate(models[name], n, steps, g, device, "tweedie"))
        run(f"d3pm_absorb {steps} steps", str(steps),
            lambda n, g, steps=steps: d3pm.generate(models["d3pm_absorb"], n, steps, g, device))
    base = rows[0][3]
    print("\n| sampler | NFE per sequence | s per batch | tokens/s | vs AR + KV cache |")
    print("|---|---:|---:|---:|---:|")
    for label, nfe, wall, tps in rows:
        print(f"| {label} | {nfe} | {wall:.2f} | {tps:,.0f} | {tps / base:.2f}× |")
    by_label = {label: tps for label, _, _, tps in rows}
    for steps in args.mdlm_steps:
        on, off = by_label[f"mdlm {steps} steps, cache on"], by_label[f"mdlm {steps} steps, cache off"]
        print(f"mdlm cache speed-up at {steps} steps: {on / off:.2f}×")


if __name__ == "__main__":
    main()
