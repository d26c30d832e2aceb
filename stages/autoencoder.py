"""autoencoder MODEL: train the sentence autoencoder of a latent-diffusion row and measure it on held-out text.

Every row has this stage so that each row's space stage can depend on
spaces/MODEL/autoencoder; a row without an autoencoder (token and encoder spaces)
only records that. For a latent row it reads the frozen MiniLM's encodings of the
training split (stage features), trains the compressor and decoder (checkpoints, resume), and reports
held-out reconstruction (exact match, token accuracy, BLEU), latent statistics
and a five-step interpolation between two held-out sentences.
Outputs spaces/MODEL/autoencoder and metrics/autoencoder/MODEL.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from stages.code import training_code
from stages.common import (FEATURES, METRICS, PREPARED, SPACES, TOKENIZER, dump, fingerprint, row_checkpoints, say,
                           stage_log, stage_main, stage_params)
from textdiff.io import read_jsonl, write_json
from textdiff.params.latent import LatentSpaceParams
from textdiff.spaces import registry as spaces
from textdiff.spaces.minilm import cached_features


@stage_main("autoencoder")
def main(name: str) -> None:
    p = stage_params()
    section = p.row(name)
    out = SPACES / name / "autoencoder"
    if not spaces.for_row(section.space).trains_autoencoder:
        record = {"row": name, "autoencoder": None, "why": "this row's space has no autoencoder"}
        write_json(out / "autoencoder.json", record)
        write_json(METRICS / "autoencoder" / f"{name}.json", record)
        return
    train_latent_autoencoder(name, section.space, p.seed, p.device, out, p.budget.train_flops)


def train_latent_autoencoder(name: str, space: LatentSpaceParams, seed: int, device_name: str, out: Path,
                             budget_flops: float | None = None) -> None:
    from textdiff.data.tokenizer import load_tokenizer
    from textdiff.data.vocab import Vocab
    from textdiff.device import resolve_device
    from textdiff.spaces.autoencoders.evaluation import interpolation, interpolation_pair, reconstruction
    from textdiff.spaces.autoencoders.model import SentenceData, fit_autoencoder, save_autoencoder
    from textdiff.training.flops import minilm_flops, train_record

    device = resolve_device(device_name)
    tokenizer = load_tokenizer(TOKENIZER)
    train_texts = [r["text"] for r in read_jsonl(PREPARED / "train.jsonl")]
    test_texts = [r["text"] for r in read_jsonl(PREPARED / "test.jsonl")][: space.reconstruction.sentences]
    t0 = time.perf_counter()
    train_cache = cached_features(FEATURES, "train", train_texts, space.max_length, space.encoder_batch_size, device,
                                  log=stage_log("autoencoder"))
    data = SentenceData.of(train_cache, train_texts, tokenizer, space)
    encode_wall = time.perf_counter() - t0
    key = fingerprint({"seed": seed, "space": dump(space), "budget": budget_flops}, PREPARED / "train.jsonl",
                      TOKENIZER / "tokenizer.json", *training_code("autoencoder", "latent"))  # latent rows only
    model, result = fit_autoencoder(space, data, Vocab.from_tokenizer(tokenizer), seed=seed, device=device,
                                    checkpoint_dir=row_checkpoints(name, "autoencoder"), fingerprint=key,
                                    budget_flops=budget_flops)
    save_autoencoder(out, model)

    rec = space.reconstruction
    test_cache = cached_features(FEATURES, "test", test_texts, space.max_length, space.encoder_batch_size, device,
                                 log=stage_log("autoencoder"))
    test_cache.mean, test_cache.std = train_cache.mean, train_cache.std  # standardised as in training
    held_out = SentenceData.of(test_cache, test_texts, tokenizer, space)
    seen = SentenceData.of(train_cache.head(rec.sentences), train_texts[: rec.sentences], tokenizer, space)
    measure = dict(method=rec.method, beam_size=rec.beam_size, batch_size=rec.batch_size, device=device)
    t1 = time.perf_counter()
    held = reconstruction(model, held_out, tokenizer, **measure)
    decode_wall = time.perf_counter() - t1
    metrics = {"row": name, "autoencoder": space.autoencoder, "num_latents": space.num_latents,
               "latent_dim": space.latent_dim, "kl_beta": space.kl_beta if model.variational else None,
               "parameters": model.num_parameters(), "steps": result.steps, "stopped_by": result.stopped_by,
               "final_loss": result.final_loss, "wall_s": result.wall_s, "train_tokens_per_s": result.tokens_per_s,
               "encode_wall_s": encode_wall, **train_record(result, space.train, budget_flops),
               "frozen_encoder_flops": sum(minilm_flops(d.cache.lengths(), space.encoder_batch_size)
                                           for d in (data, held_out)),  # MiniLM (stage features): not charged
               "loss_curve": [[step, loss] for step, loss, _ in result.losses],
               "held_out": held,
               "held_out_decode_sentences_per_s": len(held_out) / decode_wall,
               "train_subset": reconstruction(model, seen, tokenizer, examples=0, **measure),
               "interpolation": interpolation(model, held_out, tokenizer, interpolation_pair(test_texts),
                                              device=device)}
    write_json(METRICS / "autoencoder" / f"{name}.json", metrics)
    say("autoencoder", f"{name}: held-out exact match {held['exact_match']:.3f}, token accuracy "
                       f"{held['token_accuracy']:.3f}, BLEU {held['bleu']:.1f} ({rec.method})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("row", help="a row of params.yaml's rows")
    main(parser.parse_args().row)
