"""Frozen MiniLM features for the encoder-space rows (TEncDM), cached once per training split.

``encodings`` are the last hidden states of all-MiniLM-L6-v2 (contextual);
``embeddings`` are its input token embeddings (the word-embedding table, no
context). Either way a sentence is its WordPiece ids ``[CLS] … [SEP]`` (truncated
to ``max_length``) and one 384-dim vector per id.

The cache keeps only the real tokens (no padding), as float16, with per-dimension
mean and std over those tokens computed in float64 from the float32 features.
A diffusion canvas is the standardised features followed by zero vectors (the
mean) at the padding positions; its ids are padded with [PAD].
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from textdiff.frozen_encoder import minilm_path
from textdiff.io import atomic_path

FEATURES = ("encodings", "embeddings")
FEATURE_DIM = 384  # all-MiniLM-L6-v2's hidden size (checked against the model's config by a test)
CACHE_FILE = "features.safetensors"


@lru_cache(maxsize=1)
def minilm_tokenizer():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True)


@lru_cache(maxsize=2)
def minilm_model(device: str = "cpu"):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel

    return AutoModel.from_pretrained(str(minilm_path()), local_files_only=True).to(device).eval()


def tokenize(texts: list[str], max_length: int) -> list[list[int]]:
    """``[CLS] wordpieces [SEP]``, truncated to ``max_length`` (a truncated sentence keeps its [SEP])."""
    return minilm_tokenizer()(texts, truncation=True, max_length=max_length)["input_ids"]


def wordpiece_roundtrip(texts: list[str], max_length: int = 512) -> list[str]:
    """Texts as the encoder-space rows can at best write them: MiniLM-tokenised and decoded
    (lowercased, accents stripped, spaces around some punctuation): the reference for their metrics."""
    ids = [s[1:-1] for s in tokenize(texts, max_length)]
    return minilm_tokenizer().batch_decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=True)


@torch.no_grad()
def features_of(ids: list[list[int]], kind: str, batch_size: int, device: torch.device | str = "cpu",
                progress: bool = False) -> list[torch.Tensor]:
    """One float32 (len, 384) tensor per sentence, in input order.

    Sentences are run in batches of similar length, so padding costs little.
    """
    if kind not in FEATURES:
        raise ValueError(f"unknown MiniLM features {kind!r}; known: {FEATURES}")
    model = minilm_model(str(device))
    pad = minilm_tokenizer().pad_token_id
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out: list[torch.Tensor | None] = [None] * len(ids)
    for start in tqdm(range(0, len(order), batch_size), desc=f"MiniLM {kind}", disable=not progress, mininterval=5):
        rows = order[start:start + batch_size]
        width = max(len(ids[i]) for i in rows)
        batch = torch.full((len(rows), width), pad, dtype=torch.long)
        for j, i in enumerate(rows):
            batch[j, : len(ids[i])] = torch.tensor(ids[i])
        batch = batch.to(device)
        if kind == "embeddings":
            feats = model.embeddings.word_embeddings(batch)
        else:
            feats = model(input_ids=batch, attention_mask=(batch != pad).long()).last_hidden_state
        for j, i in enumerate(rows):
            out[i] = feats[j, : len(ids[i])].float().cpu()
    return out


# --------------------------------------------------------------------------- the cache


@dataclass
class Canvas:
    """A batch for the encoder-space models: MiniLM ids (B, L) and standardised features (B, L, D)."""

    ids: torch.Tensor
    x0: torch.Tensor

    @property
    def shape(self) -> torch.Size:
        return self.ids.shape

    def to(self, device) -> "Canvas":
        return Canvas(self.ids.to(device), self.x0.to(device))


@dataclass
class FeatureCache:
    ids: torch.Tensor  # (N_tokens,) int32, every sentence's ids concatenated
    features: torch.Tensor  # (N_tokens, D) float16, raw (not standardised)
    offsets: torch.Tensor  # (N + 1,) int64: sentence i is rows offsets[i]:offsets[i+1]
    mean: torch.Tensor  # (D,) float32
    std: torch.Tensor  # (D,) float32
    kind: str
    max_length: int

    @classmethod
    def build(cls, texts: list[str], kind: str, max_length: int, batch_size: int,
              device: torch.device | str = "cpu", progress: bool = False) -> "FeatureCache":
        ids = tokenize(texts, max_length)
        feats = features_of(ids, kind, batch_size, device, progress)
        flat = torch.cat(feats)
        mean, std = per_dimension_stats(flat)
        offsets = torch.tensor([0] + [len(s) for s in ids]).cumsum(0)
        return cls(torch.tensor([i for s in ids for i in s], dtype=torch.int32), flat.half(), offsets,
                   mean, std, kind, max_length)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def head(self, n: int) -> "FeatureCache":
        """The first ``n`` sentences, with this cache's statistics (a subset's features, not re-standardised)."""
        n = min(n, len(self))
        end = self.offsets[n].item()
        return FeatureCache(self.ids[:end], self.features[:end], self.offsets[: n + 1], self.mean, self.std,
                            self.kind, self.max_length)

    def holds(self, texts: list[str], kind: str, max_length: int) -> bool:
        """Whether this cache is ``kind`` of exactly ``texts``, in order, at ``max_length`` (their WordPiece ids
        compared, so a changed corpus or tokenizer never reads stale features)."""
        if self.kind != kind or self.max_length != max_length or len(self) != len(texts):
            return False
        ids = tokenize(texts, max_length)
        return self.lengths() == [len(s) for s in ids] and \
            torch.equal(self.ids, torch.tensor([i for s in ids for i in s], dtype=torch.int32))

    def lengths(self) -> list[int]:
        return (self.offsets[1:] - self.offsets[:-1]).tolist()

    def sentence(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = self.offsets[i].item(), self.offsets[i + 1].item()
        return self.ids[a:b].long(), self.features[a:b].float()

    def canvas(self, indices: list[int], seq_len: int) -> Canvas:
        """Standardised features padded with zeros to ``seq_len``; ids padded with [PAD]."""
        ids = torch.full((len(indices), seq_len), minilm_tokenizer().pad_token_id, dtype=torch.long)
        x0 = torch.zeros(len(indices), seq_len, self.features.shape[1])
        for row, i in enumerate(indices):
            tokens, feats = self.sentence(i)
            n = min(len(tokens), seq_len)
            ids[row, :n] = tokens[:n]
            x0[row, :n] = standardise(feats[:n], self.mean, self.std)
        return Canvas(ids, x0)

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {"ids": self.ids, "features": self.features, "offsets": self.offsets, "mean": self.mean,
                   "std": self.std}
        with atomic_path(folder / CACHE_FILE) as tmp:
            # one metadata key: safetensors writes a metadata map in arbitrary key order, and DVC hashes the bytes
            save_file(tensors, str(tmp), metadata={"cache": json.dumps({"kind": self.kind, "max_length": self.max_length},
                                                                       sort_keys=True)})

    @classmethod
    def load(cls, folder: str | Path) -> "FeatureCache":
        path = Path(folder) / CACHE_FILE
        if not path.exists():
            raise FileNotFoundError(f"no MiniLM feature cache at {path} (run the row's space stage first)")
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            meta = f.metadata()
        t = load_file(str(path))
        meta = json.loads(meta["cache"]) if "cache" in meta else meta  # caches written before the single key
        return cls(t["ids"], t["features"], t["offsets"], t["mean"], t["std"], meta["kind"], int(meta["max_length"]))


def per_dimension_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of each dimension over tokens (rows), computed in float64."""
    f = features.double()
    return f.mean(0).float(), f.std(0).clamp_min(1e-6).float()


def standardise(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (x - mean.to(x.device)) / std.to(x.device)


def unstandardise(z: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return z * std.to(z.device) + mean.to(z.device)


def space_summary(cache: FeatureCache) -> dict:
    lengths = cache.lengths()
    return {"features": cache.kind, "encoder": "all-MiniLM-L6-v2", "sentences": len(cache),
            "tokens": int(cache.offsets[-1]), "mean_length": sum(lengths) / max(len(lengths), 1),
            "at_max_length": sum(n == cache.max_length for n in lengths), "dim": int(cache.features.shape[1]),
            "std_min": float(cache.std.min()), "std_max": float(cache.std.max())}


def cached_features(features_dir: Path, split: str, texts: list[str], max_length: int, batch_size: int, device,
                    kind: str = "encodings", log=print) -> FeatureCache:
    """MiniLM ``kind`` features of ``texts``, the first sentences of ``split``: the cache the features stage wrote
    to ``features_dir/split`` (cut to ``len(texts)``) when it holds them at ``max_length``, else computed here
    (input ``embeddings`` always: a table lookup nothing caches)."""
    if kind == "encodings" and (features_dir / split / CACHE_FILE).exists():
        cache = FeatureCache.load(features_dir / split).head(len(texts))
        if cache.holds(texts, "encodings", max_length):
            return cache
    if kind == "encodings":
        log(f"encoding {len(texts)} {split} sentences with MiniLM here ({features_dir} holds another canvas or "
            f"corpus)")
    return FeatureCache.build(texts, kind, max_length, batch_size, device)
