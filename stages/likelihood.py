"""likelihood MODEL: held-out perplexity on the test split — exact for AR, an
ELBO upper bound for diffusion families. Outputs metrics/likelihood/MODEL.json."""

from __future__ import annotations

import argparse

from stages.common import METRICS, MODELS, PREPARED, TOKENIZER, params, say, stage_main
from textdiff.data.tokenizer import load_tokenizer
from textdiff.device import resolve_device
from textdiff.families import get_family
from textdiff.io import read_jsonl, write_json
from textdiff.persist import load_model


@stage_main("likelihood")
def main(name: str) -> None:
    p = params()
    section = p.row(name)
    device = resolve_device(p.device)
    model, _ = load_model(MODELS / name, device)
    test = [r["text"] for r in read_jsonl(PREPARED / "test.jsonl")]
    torch_seed(p.seed)
    metrics = get_family(section.family).likelihood(model, load_tokenizer(TOKENIZER), test, device=device,
                                                    batch_size=p.evaluate.batch_size, draws=p.evaluate.elbo_t_draws,
                                                    seed=p.seed)
    write_json(METRICS / "likelihood" / f"{name}.json", {"model": name, "heldout_texts": len(test), **metrics})
    say("likelihood", f"{name}: held-out ppl {metrics['heldout_ppl']} ({metrics['heldout_ppl_bound']})")


def torch_seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model")
    main(parser.parse_args().model)
