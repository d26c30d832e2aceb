"""likelihood MODEL: held-out perplexity on the test split — exact for AR, an
ELBO upper bound for diffusion families — beside what a context-blind model reaches on the same
footing (the positional unigram, textdiff.eval.context_blind) and the family's context probe
(textdiff.eval.context_probe). Outputs metrics/likelihood/MODEL.json."""

from __future__ import annotations

import argparse
import math

import torch

from stages.common import METRICS, MODELS, PREPARED, TOKENIZER, say, stage_main, stage_params
from textdiff.data.tokenizer import load_tokenizer
from textdiff.device import resolve_device
from textdiff.eval.learning_evidence import canvases, context_blind_bar, context_evidence
from textdiff.families import get_family
from textdiff.io import read_jsonl, write_json
from textdiff.params.evaluation import EvaluateParams
from textdiff.persist import load_model

PROBE_SENTENCES = 512  # held-out sentences the context probe reads (the first of the test split)


@stage_main("likelihood")
def main(name: str) -> None:
    p = stage_params(evaluate=EvaluateParams)
    section = p.row(name)
    family = get_family(section.family)
    device = resolve_device(p.device)
    model, _ = load_model(MODELS / name, device)
    tokenizer = load_tokenizer(TOKENIZER)
    test = split_texts("test")
    torch.manual_seed(p.seed)
    metrics = family.likelihood(model, tokenizer, test, device=device, batch_size=p.evaluate.batch_size,
                                draws=p.evaluate.elbo_t_draws, seed=p.seed)
    metrics = {"row": name, "heldout_texts": len(test), **metrics}
    if family.LIKELIHOOD_FOOTING is not None and metrics.get("heldout_ppl"):
        seq_len = section.model.seq_len
        bar = context_blind_bar(tokenizer, split_texts("train"), split_texts("valid"), seq_len,
                                family.LIKELIHOOD_FOOTING)
        metrics.update(context_evidence(family, model, tokenizer, test[:PROBE_SENTENCES], bar, seq_len,
                                        heldout_nats=math.log(metrics["heldout_ppl"]), seed=p.seed, device=device))
        # the margin on the whole test split (the probe read its first PROBE_SENTENCES)
        metrics["context_blind_nats"] = bar.nats_per_token(canvases(tokenizer, test, seq_len), tokenizer.pad_token_id)
        metrics["context_blind_margin"] = metrics["context_blind_nats"] - math.log(metrics["heldout_ppl"])
    write_json(METRICS / "likelihood" / f"{name}.json", metrics)
    say("likelihood", f"{name}: held-out ppl {metrics['heldout_ppl']} ({metrics['heldout_ppl_bound']})"
        + (f"; {metrics['context_blind_margin']:.3f} nats/token below the positional unigram, "
           f"{metrics['context_probe']['probe']} {metrics['context_probe']['value']:.3f} nats"
           if "context_probe" in metrics else ""))


def split_texts(split: str) -> list[str]:
    return [r["text"] for r in read_jsonl(PREPARED / f"{split}.jsonl")]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("row", help="a row of params.yaml's rows")
    main(parser.parse_args().row)
