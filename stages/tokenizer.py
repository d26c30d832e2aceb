"""tokenizer: train byte-level BPE on the train split; report round trip and lengths."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from stages.common import METRICS, PREPARED, TOKENIZER, dump, record_params, say, stage_main, stage_params
from textdiff.data.lengths import length_counts
from textdiff.data.tokenizer import round_trip_rate, train_tokenizer
from textdiff.io import read_jsonl, write_json
from textdiff.params.data import TokenizerParams


@stage_main("tokenizer")
def main() -> None:
    p = stage_params(tokenizer=TokenizerParams)
    train = [r["text"] for r in read_jsonl(PREPARED / "train.jsonl")]
    valid = [r["text"] for r in read_jsonl(PREPARED / "valid.jsonl")]
    tok = train_tokenizer(train, p.tokenizer.vocab_size, p.tokenizer.min_frequency)
    staging = Path(tempfile.mkdtemp(prefix=".tokenizer.", dir=TOKENIZER.parent))
    tok.save_pretrained(str(staging))
    shutil.rmtree(TOKENIZER, ignore_errors=True)
    staging.rename(TOKENIZER)
    lengths = [len(ids) for ids in tok(valid, add_special_tokens=False)["input_ids"]]
    metrics = {
        "vocab_size": len(tok),
        "round_trip_valid": round_trip_rate(tok, valid),
        "round_trip_train": round_trip_rate(tok, train[:2000]),
        "tokens_per_sentence_valid": sum(lengths) / len(lengths),
        "max_tokens_valid": max(lengths),
        # every canvas holds <bos> text <eos>: the report reads each row's truncated share off these counts
        "canvas_lengths": {"unit": "project tokens of a training text + <bos> + <eos>",
                           "counts": length_counts([len(ids) + 2 for ids in
                                                    tok(train, add_special_tokens=False)["input_ids"]])},
    }
    write_json(METRICS / "tokenizer.json", metrics)
    record_params(TOKENIZER / "params.json", {"tokenizer": dump(p.tokenizer)})
    say("tokenizer", f"vocab {len(tok)}; round trip {metrics['round_trip_valid']:.4f}; "
                     f"{metrics['tokens_per_sentence_valid']:.1f} tokens/sentence")


if __name__ == "__main__":
    main()
