"""evaluate MODEL | evaluate --reference | evaluate --noise-floor: text in, numbers out (DESIGN.md §6).

For a model: its samples against the judge LM, the training split (mem) and
held-out references (mauve), plus the sampling speed. With --reference: the same metrics on held-out real text
(the valid split against the test split), the row every model is read against. With --noise-floor: the same
metrics on text drawn from the positional unigram (textdiff.eval.context_blind: each position's token drawn
from the training split's frequencies there, nothing else), as many texts as a row samples: a row whose
gen_ppl or MAUVE interval overlaps this row's has no signal (textdiff.report.learned).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from stages.all_params import params
from stages.common import (JUDGE_LM, METRICS, PREPARED, SAMPLES, TOKENIZER, dump, run_group, say, stage_main,
                           tracking_config)
from textdiff.device import resolve_device
from textdiff.eval.degenerate import degenerate_report, is_empty, noise_like_threshold
from textdiff.eval.intervals import CI_LEVEL, sample_intervals, train_ngram_set
from textdiff.eval.judge import perplexity_metrics, perplexity_scores
from textdiff.eval.mauve_score import mauve_features, mauve_from_features
from textdiff.eval.ngrams import diversity, memorisation
from textdiff.io import read_json, read_jsonl, write_json

SUMMARY = Path("summary")  # one compact file per row, the only DVC metrics: `dvc metrics show` in 80 columns


def make_judge(p, device):
    """The judge stage's LM, or the Hugging Face causal LM at ``evaluate.judge`` (textdiff.eval.judge)."""
    from textdiff.eval.judge import load_judge

    return load_judge(p.evaluate, device, JUDGE_LM, TOKENIZER)


def text_metrics(texts: list[str], p, device, mauve_texts: int | None = None,
                 noise_threshold: float | str | None = None) -> dict:
    """The sample metrics, each with its 95% bootstrap interval (``*_ci``, textdiff.eval.intervals: the
    judge scores, n-gram tables and MiniLM features are computed once and re-weighted per resample),
    and whether the output is degenerate (textdiff.eval.degenerate). MAUVE reads the first ``mauve_texts``
    texts (all by default), so that a row with more texts is scored at the rows' n. ``noise_threshold``: the
    judge nats/token from which a sample is noise-like (the noise floor's, ``noise_like_nats``); "floor" sets
    it from these texts themselves (the noise floor's own evaluation: its share is reported, but being noise
    is not what makes the floor degenerate)."""
    train = [r["text"] for r in read_jsonl(PREPARED / "train.jsonl")]
    refs = [r["text"] for r in read_jsonl(PREPARED / "test.jsonl")][: p.evaluate.num_references]
    ppl, per_text = perplexity_scores(make_judge(p, device), texts)
    features = mauve_features(texts[:mauve_texts], refs, device=str(device))
    metrics = {
        "num_samples": len(texts),
        **ppl,
        "div": diversity(texts),
        "mem": memorisation(texts, train),
        "mauve": mauve_from_features(*features, p.evaluate.mauve_scaling, seed=p.seed),
        "mauve_n": len(features[0]),
        "judge": p.evaluate.judge,
    }
    if p.evaluate.bootstrap or p.evaluate.mauve_bootstrap:
        say("evaluate", f"bootstrap intervals: {p.evaluate.bootstrap} resamples, "
                        f"{p.evaluate.mauve_bootstrap} for mauve")
    metrics.update(sample_intervals(texts, per_text["nll"], per_text["counts"], per_text["entropy"],
                                    train_grams=train_ngram_set(train), features=features,
                                    mauve_point=metrics["mauve"], resamples=p.evaluate.bootstrap,
                                    mauve_resamples=p.evaluate.mauve_bootstrap, seed=p.seed,
                                    mauve_scaling=p.evaluate.mauve_scaling, level=CI_LEVEL))
    nats = per_text["nll"] / np.maximum(per_text["counts"], 1)
    floor = noise_threshold == "floor"
    if floor:  # the floor's own texts set the threshold; 3 in 4 of them are noise-like by construction
        noise_threshold = metrics["noise_like_nats"] = noise_like_threshold(
            [v for t, v in zip(texts, nats) if not is_empty(t)])
    degenerate = degenerate_report(texts, div=metrics["div"], mem=metrics["mem"], nats_per_token=nats,
                                   noise_threshold=noise_threshold, noise_rule=not floor)
    metrics.update({"degenerate": degenerate["degenerate"], "degenerate_reasons": degenerate["reasons"],
                    "empty_share": degenerate["empty_share"],
                    "repeated_token_share": degenerate["repeated_token_share"],
                    "noise_like_share": degenerate["noise_like_share"]})
    return metrics


def floor_threshold() -> float | None:
    """The noise floor's ``noise_like_nats`` (stage evaluate_noise_floor), or None before it has run."""
    path = METRICS / "eval" / f"{NOISE_FLOOR}.json"
    return read_json(path).get("noise_like_nats") if path.exists() else None


def wordpiece_reference(texts: list[str], p, device) -> dict:
    """The same real texts after a MiniLM tokenise/decode round trip (lowercase WordPiece): the ceiling
    of the encoder-space rows, whose samples are written that way."""
    from textdiff.spaces.minilm import wordpiece_roundtrip

    written = wordpiece_roundtrip(texts)
    train = [r["text"] for r in read_jsonl(PREPARED / "train.jsonl")]
    return {**perplexity_metrics(make_judge(p, device), written), "div": diversity(written),
            "mem": memorisation(written, train)}


def summary(metrics: dict, likelihood: dict) -> dict:
    """The headline numbers of a row, MAUVE with its 95% interval, rounded so that `dvc metrics show` fits 80
    columns (the full figures, the degenerate flag and every other interval are in metrics/eval)."""
    def rounded(value, digits):
        return None if value is None else round(float(value), digits)

    lo, hi = metrics.get("mauve_ci") or (None, None)
    return {"mauve": rounded(metrics["mauve"], 3), "mauve_lo": rounded(lo, 3), "mauve_hi": rounded(hi, 3),
            "gen_ppl": rounded(metrics["gen_ppl"], 1), "ppl": rounded(likelihood.get("heldout_ppl"), 1)}


def log_to_wandb(p, name: str, metrics: dict) -> None:
    """The row's evaluation as a wandb run in the pipeline run's group, with the data params it was run on."""
    from textdiff.tracking import Tracker

    tracker = Tracker(f"eval-{name}", {**tracking_config(p, name), "evaluate": dump(p.evaluate),
                                       "dvc_stage": f"evaluate@{name}"},
                      mode=p.tracking.wandb_mode, project=p.tracking.project, tags=[name], group=run_group(),
                      job_type="evaluate")
    tracker.summary({k: v for k, v in metrics.items() if isinstance(v, (int, float, bool)) or k.endswith("_ci")})
    tracker.finish()


NOISE_FLOOR = "noise_floor"  # samples/noise_floor.jsonl, metrics/eval/noise_floor.json


def noise_floor_texts(p) -> list[str]:
    """``defaults.sample.num_samples`` texts drawn from the positional unigram of the shared canvas (seeded)."""
    import torch

    from textdiff.data.batching import encode_sequences, pad_batch
    from textdiff.data.tokenizer import load_tokenizer
    from textdiff.data.vocab import Vocab
    from textdiff.eval.context_blind import fit_positional_unigram, noise_floor_canvases

    tokenizer = load_tokenizer(TOKENIZER)
    vocab, L = Vocab.from_tokenizer(tokenizer), p.defaults.model.seq_len

    def canvases(split):
        texts = [r["text"] for r in read_jsonl(PREPARED / f"{split}.jsonl")]
        return pad_batch(encode_sequences(tokenizer, texts, L), vocab.pad_id, L)

    table = fit_positional_unigram(canvases("train"), canvases("valid"), vocab.size, vocab.pad_id, "canvas")
    drawn = noise_floor_canvases(table, p.defaults.sample.num_samples, vocab.bos_id,
                                 torch.Generator().manual_seed(p.seed))
    return tokenizer.batch_decode([vocab.strip(ids) for ids in drawn.tolist()], skip_special_tokens=True,
                                  clean_up_tokenization_spaces=False)


@stage_main("evaluate")
def main(name: str | None, noise_floor: bool = False) -> None:
    p = params()
    device = resolve_device(p.device)
    if noise_floor:
        from textdiff.io import write_jsonl

        texts = noise_floor_texts(p)
        write_jsonl(SAMPLES / f"{NOISE_FLOOR}.jsonl", [{"text": t} for t in texts])
        metrics = {"row": NOISE_FLOOR, **text_metrics(texts, p, device, noise_threshold="floor")}
        out = METRICS / "eval" / f"{NOISE_FLOOR}.json"
        name = None
    elif name is None:
        texts = [r["text"] for r in read_jsonl(PREPARED / "valid.jsonl")][: p.evaluate.num_references]
        # MAUVE at the rows' n (its value and floor depend on n); the other figures on every reference text
        metrics = {"row": "reference",
                   **text_metrics(texts, p, device, mauve_texts=p.defaults.sample.num_samples,
                                  noise_threshold=floor_threshold()),
                   "wordpiece_roundtrip": wordpiece_reference(texts, p, device)}
        out = METRICS / "eval" / "reference.json"
    else:
        p.row(name)
        texts = [r["text"] for r in read_jsonl(SAMPLES / f"{name}.jsonl")]
        speed = read_json(METRICS / "sample" / f"{name}.json")
        metrics = {"row": name, **text_metrics(texts, p, device, noise_threshold=floor_threshold()),
                   "samples_per_s": speed["samples_per_s"], "tokens_per_s": speed["tokens_per_s"],
                   "sample_wall_s": speed["wall_s"]}
        out = METRICS / "eval" / f"{name}.json"
    metrics["evaluate_params"] = dump(p.evaluate)
    write_json(out, metrics)
    if name is not None:
        write_json(SUMMARY / f"{name}.json", summary(metrics, read_json(METRICS / "likelihood" / f"{name}.json")))
        log_to_wandb(p, name, metrics)
    say("evaluate", f"{metrics['row']}: gen_ppl {metrics['gen_ppl']:.1f}, mauve {metrics['mauve']:.3f}, "
                    f"div {metrics['div']:.3f}, mem {metrics['mem']:.3f}"
                    + (f" (DEGENERATE: {'; '.join(metrics['degenerate_reasons'])})" if metrics["degenerate"] else ""))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("row", nargs="?", help="a row of params.yaml's rows")
    group.add_argument("--reference", action="store_true", help="evaluate held-out real text")
    group.add_argument("--noise-floor", action="store_true",
                       help="evaluate text drawn from the positional unigram (the noise floor)")
    args = parser.parse_args()
    main(None if args.reference or args.noise_floor else args.row, noise_floor=args.noise_floor)
