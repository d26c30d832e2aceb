"""train MODEL: train one model family; checkpoints let a killed run resume.

Outputs models/MODEL/ (weights, config, params), metrics/train/MODEL.json and the
loss curve metrics/train/MODEL_loss.csv.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from stages.code import training_code
from stages.common import (METRICS, MODELS, PREPARED, SPACES, TOKENIZER, dump, fingerprint, record_params,
                           row_checkpoints, run_group, say, stage_main, stage_params, tracking_config)
from textdiff.data.tokenizer import load_tokenizer
from textdiff.data.vocab import Vocab
from textdiff.device import resolve_device
from textdiff.families import get_family
from textdiff.families.contract import RunContext
from textdiff.io import read_jsonl, write_json, write_text
from textdiff.persist import save_model
from textdiff.spaces import registry as spaces
from textdiff.tracking import Tracker
from textdiff.training.distributed import current_world, torchrun_command
from textdiff.training.flops import train_record
from textdiff.training.peak import mfu_record

@stage_main("train")
def main(name: str) -> None:
    p = stage_params()
    if p.train_processes > 1 and "WORLD_SIZE" not in os.environ:  # launch the ranks; torchrun by hand skips this
        say("train", f"{name}: {p.train_processes} processes under torchrun")
        sys.exit(subprocess.run(torchrun_command(p.train_processes, "stages.train", name)).returncode)
    world = current_world()
    section = p.row(name)
    family = get_family(section.family)
    device = resolve_device(p.device)
    tokenizer = load_tokenizer(TOKENIZER)
    train_texts = [r["text"] for r in read_jsonl(PREPARED / "train.jsonl")]
    resolved = {"seed": p.seed, "device": str(device), "budget": dump(p.budget), name: dump(section)}
    key = fingerprint({"seed": p.seed, "model": dump(section.model), "train": dump(section.train),
                       "budget": p.budget.train_flops},
                      PREPARED / "train.jsonl", TOKENIZER / "tokenizer.json", SPACES / name / "data",
                      *training_code("train", section.family))
    mode = p.tracking.wandb_mode if world.is_main else "disabled"  # one wandb run, from rank 0
    tracker = Tracker(f"train-{name}", {**resolved, **tracking_config(p, name), "dvc_stage": f"train@{name}"},
                      mode=mode, project=p.tracking.project, tags=[name], group=run_group(), job_type="train")
    ranks = f" × {world.size} processes" if world.parallel else ""
    say("train", f"{name}: {len(train_texts)} sentences on {device}{ranks}")
    run = RunContext(seed=p.seed, device=device, space=spaces.for_row(section.space, SPACES / name),
                     checkpoint_dir=row_checkpoints(name, "model"), fingerprint=key, log=tracker.log,
                     budget_flops=p.budget.train_flops,
                     curve_probe=learning_curve_probe(family, tokenizer, train_texts, section.model.seq_len, p.seed,
                                                      device))
    model, result = family.fit(section, tokenizer, train_texts, run)
    if not world.is_main:  # rank 0 writes the model and the metrics
        tracker.finish()
        return
    save_model(MODELS / name, model, name, dump(section), Vocab.from_tokenizer(tokenizer),
               raw_weights=result.raw_weights)
    record_params(MODELS / name / "params.json", resolved)
    copy_tokenizer(TOKENIZER, MODELS / name / "tokenizer")  # the folder then loads on its own (textdiff.load)
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
        "ema_decay": section.train.ema_decay,
        "processes": world.size,
        "flops_per_token": flops,
        "learning_curve": result.curve,
        **train_record(result, section.train, p.budget.train_flops),
        "precision": result.precision,
        "precision_reason": result.precision_reason,
        **mfu_record(result, device, result.precision),
    }
    write_json(METRICS / "train" / f"{name}.json", metrics)
    write_text(METRICS / "train" / f"{name}_loss.csv",
               "step,loss,lr\n" + "".join(f"{s},{l:.6f},{lr:.3e}\n" for s, l, lr in result.losses))
    tracker.summary(metrics)
    tracker.finish()
    say("train", f"{name}: {result.steps} of {result.planned_steps} steps ({result.stopped_by}), loss "
                 f"{result.final_loss:.3f}, {result.tokens_per_s:.0f} tokens/s, {result.flops:.3g} FLOPs")


def learning_curve_probe(family, tokenizer, train_texts: list[str], seq_len: int, seed: int, device):
    """For a row with a token likelihood, the held-out figure its training measures at a few points of the budget
    (textdiff.eval.learning_evidence.curve_probe); None for the others (their loss curve is the training loss)."""
    if family.LIKELIHOOD_FOOTING is None:
        return None
    from textdiff.eval.learning_evidence import context_blind_bar, curve_probe

    split = lambda name: [r["text"] for r in read_jsonl(PREPARED / f"{name}.jsonl")]  # noqa: E731
    bar = context_blind_bar(tokenizer, train_texts, split("valid"), seq_len, family.LIKELIHOOD_FOOTING)
    return curve_probe(family, tokenizer, split("test"), bar, seq_len, seed=seed, device=device)


def copy_tokenizer(source: Path, target: Path) -> None:
    import shutil

    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("row", help="a row of params.yaml's rows")
    main(parser.parse_args().row)
