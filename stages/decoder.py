"""decoder MODEL: train the decoder of an encoder-space row and measure it on held-out sentences.

Every row has this stage; a row whose space has no trained decoder only records that.

Reads the row's feature cache (spaces/MODEL/data), trains the decoder with CE on
features noised at t ~ U[0, decoder.noise_t_max] by the row's own Gaussian process,
and reports token accuracy and exact match on the test split: clean, lightly
noised (decoder.eval_t) and at the largest training time. Outputs
spaces/MODEL/decoder and metrics/decoder/MODEL.json.
"""

from __future__ import annotations

import argparse

from stages.code import training_code
from stages.common import (FEATURES, METRICS, PREPARED, SPACES, dump, fingerprint, row_checkpoints, say, stage_log,
                           stage_main, stage_params)
from textdiff.io import read_jsonl, write_json
from textdiff.spaces import registry as spaces
from textdiff.spaces.minilm import cached_features


@stage_main("decoder")
def main(name: str) -> None:
    p = stage_params()
    section = p.row(name)
    if not spaces.for_row(section.space).trains_decoder:  # every row has the stage (DVC cannot filter a foreach)
        record = {"row": name, "decoder": None, "why": "this row's space has no trained decoder"}
        write_json(SPACES / name / "decoder" / "decoder.json", record)
        write_json(METRICS / "decoder" / f"{name}.json", record)
        return
    train_decoder(name, section, p)


def train_decoder(name: str, section, p) -> None:
    import torch

    from textdiff.device import resolve_device
    from textdiff.processes.gaussian import GaussianProcess
    from textdiff.spaces.decoder import accuracy, fit_decoder, save_decoder
    from textdiff.training.flops import minilm_flops, train_record

    device = resolve_device(p.device)
    cache = spaces.load("features", SPACES / name).features
    diff = section.model.diffusion
    process = GaussianProcess(diff.schedule, diff.num_train_timesteps, diff.tan_d)
    key = fingerprint({"seed": p.seed, "decoder": dump(section.decoder), "diffusion": dump(diff),
                       "budget": p.budget.train_flops},
                      SPACES / name / "data", *training_code("decoder", section.family))
    say("decoder", f"{name}: training on {len(cache)} cached sentences on {device}")
    decoder, result = fit_decoder(section.decoder, cache, process, section.model.seq_len, seed=p.seed, device=device,
                                  checkpoint_dir=row_checkpoints(name, "decoder"), fingerprint=key,
                                  budget_flops=p.budget.train_flops)
    save_decoder(SPACES / name / "decoder", decoder)

    test = [r["text"] for r in read_jsonl(PREPARED / "test.jsonl")]
    held_out = cached_features(FEATURES, "test", test, cache.max_length, section.space.batch_size, device, cache.kind,
                               log=stage_log("decoder"))
    held_out.mean, held_out.std = cache.mean, cache.std  # standardised with the training statistics
    canvas = held_out.canvas(list(range(len(held_out))), section.model.seq_len).to(device)
    gen = torch.Generator(device=device).manual_seed(p.seed)
    times = sorted({0.0, section.decoder.eval_t, section.decoder.noise_t_max})
    decoder.to(device).eval()
    results = [accuracy(decoder, canvas, process, t, gen) for t in times]
    metrics = {"row": name, "features": cache.kind, "vocabulary": len(decoder.vocab_ids), "steps": result.steps,
               "stopped_by": result.stopped_by, "final_loss": result.final_loss,
               "wall_s": result.wall_s, "train_tokens_per_s": result.tokens_per_s,
               "parameters": decoder.num_parameters(),
               **train_record(result, section.decoder.train, p.budget.train_flops),
               "frozen_encoder_flops": minilm_flops(held_out.lengths(), section.space.batch_size, cache.kind),
               "held_out": results}
    write_json(METRICS / "decoder" / f"{name}.json", metrics)
    for r in results:
        say("decoder", f"{name} @ t={r['t']:.2f} (ᾱ={r['alpha_bar']:.3f}): token accuracy {r['token_accuracy']:.4f}, "
                       f"exact match {r['exact_match']:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("row", help="a row of params.yaml's rows")
    main(parser.parse_args().row)
