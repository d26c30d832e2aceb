"""AR generation speed with and without the KV cache.

Uses the pipeline's trained AR model (models/ar) when it exists, else a
randomly initialised model of the default size. Both modes draw the same
random numbers, so they generate the same tokens; the ratio is pure speed.

    python benchmarks/generation.py [--samples 128] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from textdiff.config import load_params
from textdiff.device import resolve_device
from textdiff.data.vocab import Vocab
from textdiff.families import ar
from textdiff.persist import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    params = load_params("params.yaml")
    if Path("models/ar/model.safetensors").exists():
        model, _ = load_model("models/ar", device)
        source = "trained models/ar"
        from textdiff.data.tokenizer import load_tokenizer
        vocab = Vocab.from_tokenizer(load_tokenizer("data/tokenizer"))
    else:
        vocab = Vocab(params.tokenizer.vocab_size, 0, 1, 2)
        torch.manual_seed(0)
        model = ar.build_backbone(params.row("ar").model, vocab).to(device).eval()
        source = "random init"
    print(f"device {device}; {source}: {model.num_parameters() / 1e6:.2f}M params, max_len {model.cfg.max_len}, "
          f"{args.samples} samples per batch")
    results = {}
    for use_cache in (True, False):
        times, tokens = [], 0
        for r in range(args.repeats):
            gen = torch.Generator(device=device).manual_seed(r)
            t0 = time.perf_counter()
            out = ar.generate(model, args.samples, vocab, generator=gen, use_cache=use_cache)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
            tokens = sum(len(s) + 1 for s in out)
        med = statistics.median(times)
        results[use_cache] = tokens / med
        print(f"  kv cache {'on ' if use_cache else 'off'}: median {med:.2f}s per batch, {tokens} tokens, "
              f"{tokens / med:,.0f} tokens/s, {args.samples / med:.1f} samples/s")
    print(f"  speed-up from the cache: {results[True] / results[False]:.2f}x")


if __name__ == "__main__":
    main()
