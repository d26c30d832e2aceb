"""How much of a latent row's sample quality is its diffusion model, and how much its autoencoder's decoder?

For each latent row of the pipeline, the same evaluation as ``evaluate@ROW`` (gen_ppl under the AR judge,
div, mem, MAUVE against the held-out references) of three sets of texts, all decoded greedily by the row's
autoencoder:
- ``real latents``: the latents of training sentences (the autoencoder's ceiling for this decoder);
- ``diffusion``: the row's samples (samples/ROW.jsonl);
- ``Gaussian latents``: standardised latents drawn from N(0, I), no diffusion at all (the decoder's prior).
The decoder was trained much longer than the AR baseline, so the Gaussian control is what tells whether
the diffusion model adds anything.

    python benchmarks/latent_controls.py [--samples 256]
"""

from __future__ import annotations

import argparse
import json

import torch

from stages.all_params import params
from stages.common import MODELS, SAMPLES, SPACES, TOKENIZER
from stages.evaluate import text_metrics
from textdiff.data.tokenizer import load_tokenizer
from textdiff.device import resolve_device
from textdiff.io import read_jsonl
from textdiff.spaces.autoencoders.latents import LatentCache
from textdiff.spaces.autoencoders.model import load_autoencoder


def decode(autoencoder, latents: torch.Tensor, tokenizer, batch_size: int = 128) -> list[str]:
    ids = []
    for s in range(0, len(latents), batch_size):
        ids += autoencoder.decode(latents[s:s + batch_size], "greedy")
    return tokenizer.batch_decode(ids, skip_special_tokens=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=256)
    args = parser.parse_args()
    p = params()
    device = resolve_device(p.device)
    tokenizer = load_tokenizer(TOKENIZER)
    rows = [r for r, family in p.row_families.items() if family == "latent" and (MODELS / r).exists()]
    results = {}
    for row in rows:
        autoencoder = load_autoencoder(SPACES / row / "autoencoder", device)
        cache = LatentCache.load(SPACES / row / "data")
        gen = torch.Generator().manual_seed(p.seed)
        real = cache.latents[torch.randperm(len(cache), generator=gen)[: args.samples]].to(device)
        gaussian = cache.to_latents(torch.randn(real.shape, generator=gen)).to(device)
        sets = {"real latents": decode(autoencoder, real, tokenizer),
                "diffusion": [r["text"] for r in read_jsonl(SAMPLES / f"{row}.jsonl")][: args.samples],
                "Gaussian latents": decode(autoencoder, gaussian, tokenizer)}
        results[row] = {}
        for name, texts in sets.items():
            m = text_metrics(texts, p, device)
            results[row][name] = {k: m[k] for k in ("gen_ppl", "div", "mem", "mauve")}
            print(f"{row:15s} {name:17s} gen_ppl {m['gen_ppl']:7.1f}  div {m['div']:.3f}  mem {m['mem']:.3f}  "
                  f"MAUVE {m['mauve']:.3f}   e.g. {texts[0]!r}", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
