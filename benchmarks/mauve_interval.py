"""How wide MAUVE's bootstrap interval is against MAUVE's real spread over new samples.

The report's MAUVE interval is a recentred bootstrap over the samples (textdiff.eval.intervals.mauve_interval).
This measures what it should cover: K disjoint sets of n training sentences (what a new sampling seed gives a
row), each scored against the same n held-out references with a fresh k-means seed, for real text and for the
same sentences with their words shuffled (a low-MAUVE "model"). For each case: the sd of MAUVE over the K sets,
the mean sd of the bootstrap resamples, their ratio, and how many of the K 95% intervals hold the mean over the
sets. Writes benchmarks/results/mauve_interval.json; the report's MAUVE note quotes the ratio from it
(tests/test_readme_figures.py checks that the two agree).

    python benchmarks/mauve_interval.py [--sets 16] [--n 128] [--resamples 200]

About 10 minutes on 2 cores at the defaults (6,400 MAUVE computes at n = 128); needs data/prepared (dvc repro
prepare).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from pathlib import Path

import numpy as np

from textdiff.eval.intervals import mauve_interval
from textdiff.eval.mauve_score import mauve_from_features, sentence_features
from textdiff.io import read_jsonl, write_json

OUT = Path("benchmarks/results/mauve_interval.json")


def shuffled_words(text: str, rng: random.Random) -> str:
    words = text.split()
    rng.shuffle(words)
    return " ".join(words)


def measure(sets: list[np.ndarray], refs: np.ndarray, resamples: int) -> dict:
    points, boot_sds, intervals = [], [], []
    for k, p in enumerate(sets):
        point = mauve_from_features(p, refs, seed=k)
        ci, values = mauve_interval(p, refs, resamples, seed=k, point=point)
        points.append(point)
        boot_sds.append(float(np.std(values, ddof=1)))
        intervals.append(ci)
    mean, sd = statistics.fmean(points), statistics.stdev(points)
    return {"mauve_mean": mean, "mauve_sd_over_sets": sd, "bootstrap_sd_mean": statistics.fmean(boot_sds),
            "ratio_bootstrap_to_sets": statistics.fmean(boot_sds) / sd,
            "intervals_holding_the_mean": sum(lo <= mean <= hi for lo, hi in intervals), "sets": len(sets)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", type=int, default=16)
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--resamples", type=int, default=200)
    args = parser.parse_args()
    train = [r["text"] for r in read_jsonl(Path("data/prepared/train.jsonl"))]
    refs = [r["text"] for r in read_jsonl(Path("data/prepared/test.jsonl"))][: args.n]
    if len(train) < args.sets * args.n:
        raise SystemExit(f"data/prepared/train.jsonl has {len(train)} sentences; --sets × --n needs "
                         f"{args.sets * args.n} (run `dvc repro prepare` first)")
    rng = random.Random(0)
    chosen = [train[k * args.n:(k + 1) * args.n] for k in range(args.sets)]
    q = sentence_features(refs)
    cases = {"real_vs_real": [sentence_features(s) for s in chosen],
             "shuffled_words_vs_real": [sentence_features([shuffled_words(t, rng) for t in s]) for s in chosen]}
    result = {"n": args.n, "resamples": args.resamples, "references": "first n of the test split",
              "sets": "disjoint runs of n training sentences",
              "cases": {name: measure(sets, q, args.resamples) for name, sets in cases.items()}}
    for name, r in result["cases"].items():
        print(f"{name:>24}: MAUVE {r['mauve_mean']:.3f}, sd over {r['sets']} sets {r['mauve_sd_over_sets']:.4f}, "
              f"bootstrap sd {r['bootstrap_sd_mean']:.4f} ({r['ratio_bootstrap_to_sets']:.1f}×), "
              f"{r['intervals_holding_the_mean']}/{r['sets']} intervals hold the mean")
    write_json(OUT, result)
    print(json.dumps(result, indent=1)[:200], "…", f"written to {OUT}")


if __name__ == "__main__":
    main()
