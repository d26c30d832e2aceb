"""What the autoencoder stage measures on held-out sentences: reconstruction, latent statistics and a
five-step interpolation between two sentences."""

from __future__ import annotations

import torch

from textdiff.eval.bleu import corpus_bleu
from textdiff.spaces.autoencoders.compressors import gaussian_kl
from textdiff.spaces.autoencoders.model import SentenceData, TextAutoencoder


def token_accuracy(decoded: list[list[int]], references: list[list[int]]) -> float:
    """Share of reference positions (its tokens and the final <eos>) where the decoding has the same token;
    an <eos> is appended to both, so stopping early or late costs positions."""
    eos = -1
    hits = total = 0
    for d, r in zip(decoded, references):
        d, r = d + [eos], r + [eos]
        hits += sum(a == b for a, b in zip(d, r))
        total += len(r)
    return hits / max(total, 1)


@torch.no_grad()
def reconstruction(model: TextAutoencoder, data: SentenceData, tokenizer, *, method: str = "greedy",
                   beam_size: int = 4, batch_size: int = 128, device="cpu", examples: int = 5) -> dict:
    """Encode (deterministically), decode and compare with the input sentence, as project-token ids and as text."""
    model.to(device).eval()
    decoded, kl, latents = [], [], []
    for s in range(0, len(data), batch_size):
        batch = data.batch(list(range(s, min(s + batch_size, len(data))))).to(device)
        mean, logvar = model.posterior(batch)
        if logvar is not None:
            kl.append(gaussian_kl(mean, logvar).cpu())
        latents.append(mean.float().cpu())
        decoded += model.decode(mean, method, beam_size=beam_size)
    references = [model.vocab.strip(t) for t in data.tokens]
    hyp = tokenizer.batch_decode(decoded, skip_special_tokens=True)
    ref = tokenizer.batch_decode(references, skip_special_tokens=True)
    z = torch.cat(latents)
    return {"sentences": len(data), "method": method,
            "exact_match": sum(d == r for d, r in zip(decoded, references)) / len(data),
            "token_accuracy": token_accuracy(decoded, references), "bleu": corpus_bleu(hyp, ref),
            "latent_mean": float(z.mean()), "latent_std": float(z.std()),
            "latent_norm": float(z.norm(dim=-1).mean()),
            "kl_per_sentence": float(torch.cat(kl).mean()) if kl else None,
            "examples": [{"input": r, "output": h} for r, h in zip(ref[:examples], hyp[:examples])]}


@torch.no_grad()
def interpolation(model: TextAutoencoder, data: SentenceData, tokenizer, pair: tuple[int, int], steps: int = 5,
                  device="cpu") -> list[dict]:
    """Decode (greedily) the latents (1 − λ)·z_a + λ·z_b for ``steps`` evenly spaced λ from 0 to 1."""
    model.to(device).eval()
    z = model.encode(data.batch(list(pair)).to(device))
    lambdas = torch.linspace(0, 1, steps, device=z.device)
    mixed = (1 - lambdas)[:, None, None] * z[0] + lambdas[:, None, None] * z[1]
    texts = tokenizer.batch_decode(model.decode(mixed, "greedy"), skip_special_tokens=True)
    return [{"lambda": round(float(lam), 4), "text": text} for lam, text in zip(lambdas, texts)]


def interpolation_pair(texts: list[str], min_words: int = 6, max_words: int = 20) -> tuple[int, int]:
    """The first two held-out sentences of a readable length (the whole split's first two if none)."""
    ok = [i for i, t in enumerate(texts) if min_words <= len(t.split()) <= max_words]
    return (ok[0], ok[1]) if len(ok) >= 2 else (0, min(1, len(texts) - 1))
