"""`make curves`: the compute gap between the AR and masked diffusion, and data-constrained training, measured
side by side on the bundled corpus (textdiff.report.compute_gap states the three claims and how each is judged).

Runs every (row, budget) point that benchmarks/results/learning_curves/points.jsonl lacks for the current data
and params (each a fresh ``fit`` of the row under that FLOP budget, as the train stage trains; the points are
appended as they finish, so a killed run keeps them), then writes benchmarks/results/compute_gap.json, which the
report's verdict reads. Points from other data or other row params are never mixed in.

    .venv/bin/python benchmarks/compute_gap.py [--budgets 6.25e11 2.5e12 1e13 4e13] [--analyse-only]

Needs data/prepared and data/tokenizer (`dvc repro prepare tokenizer`). At the default budgets the runs took
2,090 s of training wall on 2 cores (the 4e13 points 1,400 s of it; other jobs shared the machine
for part of that). The Prefect flow `pipelines/curves.py` runs the same
points as tasks, so workers can take them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from learning_curves import data_sha256, run_point, training_digest  # noqa: E402

from textdiff.config import load_params  # noqa: E402
from textdiff.io import read_jsonl, write_json  # noqa: E402
from textdiff.report.compute_gap import compute_factor, current_points, data_constrained  # noqa: E402

POINTS = Path("benchmarks/results/learning_curves/points.jsonl")
OUT = Path("benchmarks/results/compute_gap.json")
BUDGETS = (6.25e11, 2.5e12, 1e13, 4e13)  # × 4 apart: AR 0.2 to 14 epochs of the bundled corpus
ROWS = ("ar", "mdlm")


def missing(p, budgets, rows, points) -> list[tuple[str, float]]:
    sha = data_sha256()
    have = {(q["row"], q["budget_flops"]) for row in rows
            for q in current_points(points, row, sha, training_digest(p, row))}
    return [(row, b) for b in budgets for row in rows if (row, b) not in have]


def run_one(p, row: str, budget: float) -> dict:
    """Train ``row`` under ``budget`` FLOPs as the train stage would and score it (one learning-curve point)."""
    from textdiff.data.tokenizer import load_tokenizer
    from textdiff.device import resolve_device

    tokenizer = load_tokenizer(Path("data/tokenizer"))
    train = [r["text"] for r in read_jsonl(Path("data/prepared/train.jsonl"))]
    test = [r["text"] for r in read_jsonl(Path("data/prepared/test.jsonl"))][:512]
    point = run_point(p, row, budget, tokenizer, train, test, None, resolve_device(p.device))
    print(f"{row} at {budget:.3g} FLOPs: {point['steps']} steps, {point['epochs']:.2f} epochs, "
          f"{point['train_wall_s']:.0f} s, held-out nats {point['heldout_nats']:.3f}", flush=True)
    return point


def run_missing(p, budgets, rows) -> None:
    """Each missing point, appended to POINTS as it finishes."""
    for row, budget in missing(p, budgets, rows, read_points()):
        append(run_one(p, row, budget))


def read_points() -> list[dict]:
    return [json.loads(line) for line in POINTS.read_text().splitlines()] if POINTS.exists() else []


def append(point: dict) -> None:
    POINTS.parent.mkdir(parents=True, exist_ok=True)
    with POINTS.open("a") as f:
        f.write(json.dumps(point) + "\n")


def summarise(p, budgets) -> dict:
    sha, points = data_sha256(), read_points()
    digests = {row: training_digest(p, row) for row in (*ROWS, "embedding")}
    ar, mdlm = (current_points(points, row, sha, digests[row]) for row in ROWS)
    return {
        "data_sha256": sha, "training_digests": {row: digests[row] for row in ROWS},
        "conditions": (f"bundled corpus ({len(read_jsonl(Path('data/prepared/train.jsonl')))} training sentences), "
                       f"default row sizes, budgets {', '.join(f'{b:.3g}' for b in budgets)} FLOPs, one seed "
                       f"({p.seed}), held-out: the first 512 test sentences"),
        "points": {row: [{k: q.get(k) for k in ("budget_flops", "train_flops", "steps", "epochs", "heldout_nats",
                                             "heldout_nats_se", "bound", "train_wall_s")} for q in pts]
                   for row, pts in (("ar", ar), ("mdlm", mdlm))},
        "claims": {
            "masked_compute_factor": compute_factor(ar, mdlm),
            "embedding_compute_factor": {"not_run": "the embedding row has no likelihood bound (Plaid's variational "
                                                    "bound is not built), so its held-out NLL cannot be matched"},
            "data_constrained": data_constrained(ar, mdlm),
        },
    }


def write_summary(p, budgets) -> dict:
    summary = summarise(p, budgets)
    write_json(OUT, summary)
    factor = summary["claims"]["masked_compute_factor"]
    print(f"masked diffusion's compute factor: {factor.get('factor')} ({factor.get('why', factor.get('how'))}); "
          f"wrote {OUT}", flush=True)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", nargs="+", type=float, default=list(BUDGETS))
    parser.add_argument("--analyse-only", action="store_true", help="do not train; summarise the points there are")
    args = parser.parse_args()
    p = load_params(Path("params.yaml"))
    if not args.analyse_only:
        run_missing(p, args.budgets, ROWS)
    left = missing(p, args.budgets, ROWS, read_points())
    if left:
        sys.exit(f"points missing for this data and params: {', '.join(f'{r}@{b:.3g}' for r, b in left)}; "
                 "run without --analyse-only")
    write_summary(p, args.budgets)


if __name__ == "__main__":
    main()
