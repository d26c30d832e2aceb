"""train MODEL: train one model family; checkpoints let a killed run resume.

Outputs models/MODEL/ (weights, config, params), metrics/train/MODEL.json and the
loss curve metrics/train/MODEL_loss.csv.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from stages.common import (CHECKPOINTS, METRICS, MODELS, PREPARED, SPACES, TOKENIZER, dump, fingerprint, params,
                           record_params, say, stage_main)
from textdiff.data.tokenizer import load_tokenizer
from textdiff.data.vocab import Vocab
from textdiff.device import resolve_device
from textdiff.families import get_family
from textdiff.io import read_jsonl, write_json, write_text
from textdiff.persist import save_model
from textdiff.tracking import Tracker

PEAK_FLOPS = 185e9  # measured dense fp32 matmul peak of the 2-core CPU machines (DESIGN.md §8)


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


@stage_main("train")
def main(name: str) -> None:
    p = params()
    section = p.family(name)
    family = get_family(name)
    device = resolve_device(p.device)
    tokenizer = load_tokenizer(TOKENIZER)
    train_texts = [r["text"] for r in read_jsonl(PREPARED / "train.jsonl")]
    resolved = {"seed": p.seed, "device": str(device), name: dump(section)}
    code = [Path("textdiff") / d for d in ("nn", "training", "processes", "spaces")]
    key = fingerprint({"seed": p.seed, "model": dump(section.model), "train": dump(section.train)},
                      PREPARED / "train.jsonl", TOKENIZER / "tokenizer.json", SPACES / name / "data",
                      Path(family.__file__), *code)
    tracker = Tracker(f"train-{name}", {**resolved, "git_commit": git_commit(), "dvc_stage": f"train@{name}"},
                      mode=p.tracking.wandb_mode, project=p.tracking.project, tags=[name])
    say("train", f"{name}: {len(train_texts)} sentences on {device}")
    model, result = family.fit(section, tokenizer, train_texts, seed=p.seed, device=device,
                               checkpoint_dir=CHECKPOINTS / name, fingerprint=key, log=tracker.log,
                               space_dir=SPACES / name)
    save_model(MODELS / name, model, name, dump(section), Vocab.from_tokenizer(tokenizer))
    record_params(MODELS / name / "params.json", resolved)
    seq_len = section.model.seq_len
    flops = model.flops_per_token(seq_len, training=True)
    metrics = {
        "steps": result.steps,
        "stopped_by": result.stopped_by,
        "resumed_from_step": result.resumed_from,
        "final_loss": result.final_loss,
        "wall_s": result.wall_s,
        "train_tokens_per_s": result.tokens_per_s,
        "parameters": model.num_parameters(),
        "flops_per_token": flops,
        "mfu_vs_cpu_peak": result.tokens_per_s * flops / PEAK_FLOPS if device.type == "cpu" else None,
    }
    write_json(METRICS / "train" / f"{name}.json", metrics)
    write_text(METRICS / "train" / f"{name}_loss.csv",
               "step,loss,lr\n" + "".join(f"{s},{l:.6f},{lr:.3e}\n" for s, l, lr in result.losses))
    tracker.summary(metrics)
    tracker.finish()
    say("train", f"{name}: {result.steps} steps ({result.stopped_by}), loss {result.final_loss:.3f}, "
                 f"{result.tokens_per_s:.0f} tokens/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model")
    main(parser.parse_args().model)
