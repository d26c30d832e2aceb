"""judge: the LM that scores every row's samples, apart from the rows it judges.

With ``evaluate.judge: judge`` (the default) it trains a causal transformer on the
project tokenizer with its own params section (``judge``: larger and longer
than any row), checkpointed and cached like any training stage. With a path it
records that Hugging Face causal LM instead. Either way it measures the
judge's exact held-out perplexity on the test split, which the report prints
beside the rows' so that a reader can check the judge is the stronger model.

Outputs judge/ (weights and config, or a pointer to the path) and metrics/judge.json.
"""

from __future__ import annotations

import math

from stages.code import training_code
from stages.common import (CHECKPOINTS, JUDGE_LM, METRICS, PREPARED, TOKENIZER, dump, fingerprint, record_params, say,
                           stage_main, stage_params)
from textdiff.data.tokenizer import load_tokenizer
from textdiff.data.vocab import Vocab
from textdiff.device import resolve_device
from textdiff.eval.judge import TRAINED_JUDGE, load_judge
from textdiff.io import read_jsonl, write_json
from textdiff.params.evaluation import EvaluateParams, JudgeParams
from textdiff.persist import save_model

def train_judge(p, device) -> dict:
    from textdiff.params.ar import ARParams
    from textdiff.families import ar
    from textdiff.families.contract import RunContext

    section = ARParams(model=p.judge.model, train=p.judge.train)
    tokenizer = load_tokenizer(TOKENIZER)
    train_texts = [r["text"] for r in read_jsonl(PREPARED / "train.jsonl")]
    key = fingerprint({"seed": p.seed, "judge": dump(p.judge)}, PREPARED / "train.jsonl",
                      TOKENIZER / "tokenizer.json", *training_code("judge"))
    say("judge", f"training the judge LM ({p.judge.model.d_model}×{p.judge.model.n_layers}, "
                 f"{p.judge.train.steps} steps) on {len(train_texts)} sentences")
    model, result = ar.fit(section, tokenizer, train_texts,
                           RunContext(seed=p.seed, device=device, checkpoint_dir=CHECKPOINTS / "judge",
                                      fingerprint=key))
    save_model(JUDGE_LM, model, "judge", dump(section), Vocab.from_tokenizer(tokenizer))
    record_params(JUDGE_LM / "params.json", {"seed": p.seed, "judge": dump(p.judge)})
    return {"kind": "trained", "steps": result.steps, "stopped_by": result.stopped_by, "wall_s": result.wall_s,
            "final_loss": result.final_loss, "parameters": model.num_parameters(), "train_tokens": result.tokens,
            "train_tokens_per_s": result.tokens_per_s, "train_flops": result.flops}


@stage_main("judge")
def main() -> None:
    p = stage_params(judge=JudgeParams, evaluate=EvaluateParams)
    device = resolve_device(p.device)
    if p.evaluate.judge == TRAINED_JUDGE:
        metrics = train_judge(p, device)
    else:
        metrics = {"kind": "huggingface", "path": p.evaluate.judge}
        write_json(JUDGE_LM / "judge.json", metrics)
    test = [r["text"] for r in read_jsonl(PREPARED / "test.jsonl")]
    nll, counts, _ = load_judge(p.evaluate, device, JUDGE_LM, TOKENIZER).score(test)
    nats = float(nll.sum() / counts.sum())
    metrics.update({"heldout_ppl": math.exp(nats), "heldout_nats_per_token": nats, "heldout_tokens": int(counts.sum()),
                    "heldout_texts": len(test),
                    "tokenizer": "project" if p.evaluate.judge == TRAINED_JUDGE else "the judge's own"})
    write_json(METRICS / "judge.json", metrics)
    say("judge", f"held-out ppl {metrics['heldout_ppl']:.1f} (exact, {metrics['heldout_tokens']} tokens)")


if __name__ == "__main__":
    main()
