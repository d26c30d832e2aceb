"""space MODEL: prepare the row's diffusion space once; outputs spaces/MODEL/data and metrics/space/MODEL.json.

Token rows (``space: tokens``) work on the project tokenizer's ids: their space
folder records which tokenizer and vocabulary that is. Encoder-space rows run the
frozen MiniLM over the training split once (encodings: stage features, shared by
every row that reads them) and cache its features (float16, real tokens only) with
the per-dimension mean and std, so training never re-runs the encoder. Latent rows
encode the training split with their trained autoencoder
(spaces/MODEL/autoencoder) and store the latents with their per-dimension mean and std.
"""

from __future__ import annotations

import argparse
import time

from stages.common import (FEATURES, METRICS, PREPARED, SPACES, TOKENIZER, dump, file_digest, say, stage_log,
                           stage_main, stage_params)
from textdiff.device import resolve_device
from textdiff.io import read_json, read_jsonl, write_json
from textdiff.params.encoder import EncoderSpaceParams
from textdiff.params.latent import LatentSpaceParams
from textdiff.spaces import registry as spaces
from textdiff.spaces.minilm import cached_features


@stage_main("space")
def main(name: str) -> None:
    p = stage_params()
    section = p.row(name)
    out = SPACES / name / "data"
    kind = spaces.kind_of(section.space)
    summary = PREPARE[kind](name, section.space, p.device, out)
    # space.json is a DVC output that later stages depend on: only what the inputs fix goes in (no timings),
    # so a forced re-run writes the same bytes and invalidates nothing downstream
    write_json(out / "space.json", {"row": name, **{k: v for k, v in summary.items() if not k.endswith("wall_s")}})
    if kind != "tokens":  # the frozen MiniLM reads these rows' text: how much its canvas truncates
        summary_metrics = {**summary, "canvas_overflow": minilm_overflow(section.space.max_length)}
    else:
        summary_metrics = summary
    write_json(METRICS / "space" / f"{name}.json", {"row": name, **summary_metrics})
    say("space", f"{name}: {summary.get('space') or summary['features']} ready in {out}")


def token_space(name: str, space: str, device_name: str, out) -> dict:
    """Token rows cache nothing: the record names the tokenizer their ids come from."""
    tokenizer = read_json(TOKENIZER / "tokenizer.json")
    return {"space": "tokens", "tokenizer": str(TOKENIZER), "vocab_size": len(tokenizer["model"]["vocab"]),
            "tokenizer_digest": file_digest(TOKENIZER / "tokenizer.json")}


def feature_cache(name: str, space: EncoderSpaceParams, device_name: str, out) -> dict:
    """The frozen MiniLM's features of the training split with their statistics: encodings from the features
    stage, input embeddings (a table lookup) computed here."""
    from textdiff.spaces.minilm import space_summary
    from textdiff.training.flops import minilm_flops

    texts = [r["text"] for r in read_jsonl(PREPARED / "train.jsonl")]
    device = resolve_device(device_name)
    say("space", f"{name}: MiniLM {space.features} of {len(texts)} training sentences on {device}")
    t0 = time.perf_counter()
    cache = cached_features(FEATURES, "train", texts, space.max_length, space.batch_size, device, space.features,
                            log=stage_log("space"))
    cache.save(out)
    return {**space_summary(cache), "encode_wall_s": time.perf_counter() - t0,
            "frozen_encoder_flops": minilm_flops(cache.lengths(), space.batch_size, cache.kind),
            "cache_bytes": (out / "features.safetensors").stat().st_size, "params": dump(space)}


def minilm_overflow(max_length: int) -> dict:
    """The share of training sentences longer than the MiniLM canvas ([CLS] … [SEP]), which it truncates."""
    from textdiff.data.lengths import length_counts, overflow
    from textdiff.spaces.minilm import minilm_tokenizer

    texts = [r["text"] for r in read_jsonl(PREPARED / "train.jsonl")]
    lengths = [len(ids) for ids in minilm_tokenizer()(texts)["input_ids"]]
    return {"unit": "MiniLM WordPiece tokens incl. [CLS] and [SEP]", **overflow(length_counts(lengths), max_length)}


def latent_dataset(name: str, space: LatentSpaceParams, device_name: str, out) -> dict:
    """Encode the training split with the row's trained autoencoder and store the latents with their statistics."""
    from textdiff.data.tokenizer import load_tokenizer
    from textdiff.spaces.autoencoders.latents import LatentCache, encode_all
    from textdiff.spaces.autoencoders.model import SentenceData, load_autoencoder
    from textdiff.training.flops import minilm_flops

    device = resolve_device(device_name)
    texts = [r["text"] for r in read_jsonl(PREPARED / "train.jsonl")]
    say("space", f"{name}: {space.autoencoder} latents of {len(texts)} training sentences on {device}")
    t0 = time.perf_counter()
    autoencoder = load_autoencoder(SPACES / name / "autoencoder", device)
    cache = cached_features(FEATURES, "train", texts, space.max_length, space.encoder_batch_size, device,
                            log=stage_log("space"))
    data = SentenceData.of(cache, texts, load_tokenizer(TOKENIZER), space)
    latents = LatentCache.of(encode_all(autoencoder, data, space.encoder_batch_size, device), space.autoencoder)
    latents.save(out)
    return {"space": "latent", **latents.summary(), "encode_wall_s": time.perf_counter() - t0,
            "frozen_encoder_flops": minilm_flops(data.cache.lengths(), space.encoder_batch_size),
            "cache_bytes": (out / "latents.safetensors").stat().st_size, "params": dump(space)}


PREPARE = {"tokens": token_space, "features": feature_cache, "latent": latent_dataset}  # by textdiff.spaces kind


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("row", help="a row of params.yaml's rows")
    main(parser.parse_args().row)
