"""Measure what tests/test_learning.py asserts: each likelihood row and its context-blind twin, over seeds.

    OMP_NUM_THREADS=1 .venv/bin/python -m tests.calibrate_learning [--seeds 0 1 2] [--rows mdlm ...] [--jobs 2]

For every (row, seed, twin) it trains the row's tiny model on the test language exactly as the test does (one
torch thread, as `make test` runs), measures the pipeline's own learning evidence along training (the margin
below the positional unigram on the row's footing, and the family's context probe) at the fractions of
``--at``, and prints one JSON line per point. The twin is the same row trained and evaluated with every
attention output zeroed: no position sees another. The thresholds and step counts in test_learning.py come
from these lines (the smallest value over seeds, with margin).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile


def measure(job: tuple[str, int, bool, int, tuple[float, ...], float | None]) -> list[dict]:
    import contextlib

    import torch

    torch.set_num_threads(1)
    from tests.test_learning import attention_zeroed, grammar_sentences, learning_evidence, tiny_section
    from tests.reference_rows import row_family
    from textdiff.data.tokenizer import load_tokenizer, train_tokenizer
    from textdiff.families.contract import RunContext

    row, seed, blind, steps, at, lr = job
    train, valid, held_out = grammar_sentences(2000, 0), grammar_sentences(200, 2), grammar_sentences(200, 1)
    with tempfile.TemporaryDirectory() as folder:
        train_tokenizer(train, vocab_size=300).save_pretrained(folder)
        tokenizer = load_tokenizer(folder)
    family = row_family(row)

    def probe(model) -> dict:
        return learning_evidence(row, model, tokenizer, train, valid, held_out)

    with attention_zeroed() if blind else contextlib.nullcontext():
        section = tiny_section(row, steps)
        if lr is not None:
            section = section.model_copy(update={"train": section.train.model_copy(update={"lr": lr})})
        _, result = family.fit(section, tokenizer, train,
                               RunContext(seed=seed, device=torch.device("cpu"), progress=False, curve_probe=probe,
                                          curve_at=at))
    return [{"row": row, "seed": seed, "twin": blind, "steps": steps, "lr": section.train.lr, "step": p["step"],
             "margin": round(p["context_blind_margin"], 3), "probe": p["context_probe"]["probe"],
             "probe_value": round(p["context_probe"]["value"], 3),
             "nats": round(p["context_blind_nats"] - p["context_blind_margin"], 3),
             "bar": round(p["context_blind_nats"], 3)} for p in result.curve]


def main() -> None:
    from tests.test_learning import LIKELIHOOD_ROWS, STEPS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", nargs="+", default=LIKELIHOOD_ROWS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, help="train every row this long (default: test_learning.STEPS)")
    parser.add_argument("--at", nargs="+", type=float, default=[1.0], help="fractions of the steps measured")
    parser.add_argument("--lr", type=float, help="train every row at this lr (default: test_learning's)")
    parser.add_argument("--no-twins", action="store_true")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    jobs = [(row, seed, blind, args.steps or STEPS[row], tuple(args.at), args.lr) for seed in args.seeds for row in args.rows
            for blind in ((False,) if args.no_twins else (False, True))]
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        for points in pool.imap_unordered(measure, jobs):
            for point in points:
                print(json.dumps(point), flush=True)


if __name__ == "__main__":
    main()
