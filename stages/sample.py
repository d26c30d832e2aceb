"""sample MODEL: generate texts with a trained model; record speed.

Outputs samples/MODEL.jsonl and metrics/sample/MODEL.json.
"""

from __future__ import annotations

import argparse

from stages.common import METRICS, MODELS, SAMPLES, SPACES, TOKENIZER, dump, say, stage_main, stage_params
from textdiff.data.tokenizer import load_tokenizer
from textdiff.device import resolve_device
from textdiff.families import get_family
from textdiff.families.contract import RunContext
from textdiff.io import write_json, write_jsonl
from textdiff.persist import load_model
from textdiff.spaces import registry as spaces


@stage_main("sample")
def main(name: str) -> None:
    p = stage_params()
    section = p.row(name)
    device = resolve_device(p.device)
    model, _ = load_model(MODELS / name, device)
    run = RunContext(seed=p.seed, device=device, space=spaces.for_row(section.space, SPACES / name))
    texts, speed = get_family(section.family).sample_texts(model, load_tokenizer(TOKENIZER), section.sample, run)
    write_jsonl(SAMPLES / f"{name}.jsonl", [{"text": t} for t in texts])
    write_json(METRICS / "sample" / f"{name}.json", {**speed, "device": str(device), "params": dump(section.sample)})
    say("sample", f"{name}: {len(texts)} samples, {speed['samples_per_s']:.1f} samples/s, "
                  f"{speed['tokens_per_s']:.0f} tokens/s, {speed['nfe']:.1f} network calls and "
                  f"{speed['sample_flops_per_sample']:.3g} FLOPs per sample")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("row", help="a row of params.yaml's rows")
    main(parser.parse_args().row)
