"""evaluate MODEL | evaluate --reference: text in, numbers out (DESIGN.md §6).

For a model: its samples against the judge LM, the training split (mem) and
held-out references (mauve), plus the sampling speed. With --reference: the same metrics on held-out real text
(the valid split against the test split), the row every model is read against.
"""

from __future__ import annotations

import argparse

from stages.common import METRICS, MODELS, PREPARED, SAMPLES, TOKENIZER, dump, params, say, stage_main
from textdiff.data.tokenizer import load_tokenizer
from textdiff.device import resolve_device
from textdiff.eval.judge import HFJudge, ProjectJudge, perplexity_metrics
from textdiff.eval.mauve_score import mauve
from textdiff.eval.ngrams import diversity, memorisation
from textdiff.data.vocab import Vocab
from textdiff.io import read_json, read_jsonl, write_json
from textdiff.persist import load_model


def make_judge(p, device):
    if p.evaluate.judge == "ar":
        model, _ = load_model(MODELS / "ar", device)
        tok = load_tokenizer(TOKENIZER)
        return ProjectJudge(model, tok, Vocab.from_tokenizer(tok), device, p.evaluate.batch_size)
    return HFJudge(p.evaluate.judge, device, p.evaluate.batch_size)


def text_metrics(texts: list[str], p, device) -> dict:
    train = [r["text"] for r in read_jsonl(PREPARED / "train.jsonl")]
    refs = [r["text"] for r in read_jsonl(PREPARED / "test.jsonl")][: p.evaluate.num_references]
    return {
        "num_samples": len(texts),
        **perplexity_metrics(make_judge(p, device), texts),
        "div": diversity(texts),
        "mem": memorisation(texts, train),
        "mauve": mauve(texts, refs, p.evaluate.mauve_scaling, seed=p.seed, device=str(device)),
        "mauve_n": min(len(texts), len(refs)),
        "judge": p.evaluate.judge,
    }


def wordpiece_reference(texts: list[str], p, device) -> dict:
    """The same real texts after a MiniLM tokenise/decode round trip (lowercase WordPiece): the ceiling
    of the encoder-space rows, whose samples are written that way."""
    from textdiff.spaces.minilm import wordpiece_roundtrip

    written = wordpiece_roundtrip(texts)
    train = [r["text"] for r in read_jsonl(PREPARED / "train.jsonl")]
    return {**perplexity_metrics(make_judge(p, device), written), "div": diversity(written),
            "mem": memorisation(written, train)}


@stage_main("evaluate")
def main(name: str | None) -> None:
    p = params()
    device = resolve_device(p.device)
    if name is None:
        texts = [r["text"] for r in read_jsonl(PREPARED / "valid.jsonl")][: p.evaluate.num_references]
        metrics = {"model": "reference", **text_metrics(texts, p, device),
                   "wordpiece_roundtrip": wordpiece_reference(texts, p, device)}
        out = METRICS / "eval" / "reference.json"
    else:
        p.family(name)
        texts = [r["text"] for r in read_jsonl(SAMPLES / f"{name}.jsonl")]
        speed = read_json(METRICS / "sample" / f"{name}.json")
        metrics = {"model": name, **text_metrics(texts, p, device),
                   "samples_per_s": speed["samples_per_s"], "tokens_per_s": speed["tokens_per_s"],
                   "sample_wall_s": speed["wall_s"]}
        out = METRICS / "eval" / f"{name}.json"
    metrics["evaluate_params"] = dump(p.evaluate)
    write_json(out, metrics)
    say("evaluate", f"{metrics['model']}: gen_ppl {metrics['gen_ppl']:.1f}, mauve {metrics['mauve']:.3f}, "
                    f"div {metrics['div']:.3f}, mem {metrics['mem']:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("model", nargs="?")
    group.add_argument("--reference", action="store_true", help="evaluate held-out real text")
    args = parser.parse_args()
    main(None if args.reference else args.model)
