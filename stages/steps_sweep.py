"""steps_sweep MODEL: generative perplexity and entropy against the number of sampling steps.

For each value in steps_sweep.steps, draws steps_sweep.num_samples texts with the
row's own sampler and sample params (only steps, count and batch size replaced)
and scores them with the judge LM. Every row has the stage; a row whose family is not
in steps_sweep.families only records that. Outputs metrics/sweep/MODEL.json and
samples/sweep/MODEL.jsonl (every text, tagged with its steps).
"""

from __future__ import annotations

import argparse

from stages.common import JUDGE_LM, METRICS, MODELS, SAMPLES, SPACES, TOKENIZER, dump, say, stage_main, stage_params
from textdiff.io import write_json, write_jsonl
from textdiff.params.evaluation import EvaluateParams
from textdiff.params.tasks import StepsSweepParams


@stage_main("steps_sweep")
def main(name: str) -> None:
    p = stage_params(steps_sweep=StepsSweepParams, evaluate=EvaluateParams)
    section = p.row(name)
    sweep = p.steps_sweep
    if section.family not in sweep.families:  # every row has the stage (DVC cannot filter a foreach)
        write_jsonl(SAMPLES / "sweep" / f"{name}.jsonl", [])
        write_json(METRICS / "sweep" / f"{name}.json",
                   {"row": name, "swept": False, "why": f"the {section.family} family is not in steps_sweep.families "
                                                          f"({', '.join(sweep.families)})"})
        return
    sweep_row(name, section, p)


def sweep_row(name: str, section, p) -> None:
    from textdiff.data.tokenizer import load_tokenizer
    from textdiff.device import resolve_device
    from textdiff.eval.judge import load_judge, perplexity_metrics
    from textdiff.eval.ngrams import diversity
    from textdiff.families import get_family
    from textdiff.families.contract import RunContext
    from textdiff.persist import load_model
    from textdiff.spaces import registry as spaces

    sweep = p.steps_sweep
    device = resolve_device(p.device)
    model, _ = load_model(MODELS / name, device)
    tokenizer = load_tokenizer(TOKENIZER)
    judge = load_judge(p.evaluate, device, JUDGE_LM, TOKENIZER)
    points, records = [], []
    run = RunContext(seed=p.seed, device=device, space=spaces.for_row(section.space, SPACES / name))
    for steps in sweep.steps:
        sample_params = section.sample.model_copy(update={"steps": steps, "num_samples": sweep.num_samples,
                                                          "batch_size": sweep.batch_size})
        texts, speed = get_family(section.family).sample_texts(model, tokenizer, sample_params, run)
        point = {"steps": steps, **perplexity_metrics(judge, texts), "div": diversity(texts),
                 "samples_per_s": speed["samples_per_s"], "tokens_per_s": speed["tokens_per_s"]}
        points.append(point)
        records += [{"steps": steps, "text": t} for t in texts]
        say("steps_sweep", f"{name} @ {steps} steps: gen_ppl {point['gen_ppl']:.1f}, entropy {point['entropy']:.2f}, "
                           f"{point['samples_per_s']:.1f} samples/s")
    family = get_family(section.family)
    cache = {}
    if sweep.cache_steps and family.cache_wall_clock is not None:
        cache = family.cache_wall_clock(model, sweep.cache_samples, sweep.cache_steps, p.seed, device)
        say("steps_sweep", f"{name} @ {sweep.cache_steps} steps: cached {cache['cached_wall_s']:.1f} s, uncached "
                           f"{cache['uncached_wall_s']:.1f} s, same samples: {cache['cache_same_samples']}")
    write_jsonl(SAMPLES / "sweep" / f"{name}.jsonl", records)
    write_json(METRICS / "sweep" / f"{name}.json",
               {"row": name, "swept": True, "num_samples": sweep.num_samples, "points": points,
                "sample_params": dump(section.sample), **cache})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("row", help="a row of params.yaml's rows")
    main(parser.parse_args().row)
