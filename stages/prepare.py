"""prepare: load the corpus, clean it, drop duplicates, filter by length, split.

Outputs data/prepared/{train,valid,test}.jsonl, stats.json and params.json.
"""

from __future__ import annotations

import hashlib
from collections import Counter

from stages.common import PARAMS_FILE, PREPARED, dump, record_params, say, stage_main, stage_params
from textdiff.data.clean import clean_records, length
from textdiff.data.sources import CorpusError, load_corpus
from textdiff.data.splits import split_records
from textdiff.io import write_json, write_jsonl
from textdiff.params.base import ParamsError
from textdiff.params.data import DataParams, corpus_files_outside


def length_histogram(texts: list[str], unit: str, bin_width: int = 5) -> dict[str, int]:
    counts = Counter(length(t, unit) // bin_width * bin_width for t in texts)
    return {f"{lo}-{lo + bin_width - 1}": counts[lo] for lo in sorted(counts)}


def splits_sha256(splits: dict[str, list[dict]]) -> str:
    """One hash of the prepared splits' content: two runs compare (e.g. in the report's ablation
    tables) only when it is the same."""
    h = hashlib.sha256()
    for name in sorted(splits):
        h.update(name.encode())
        for row in splits[name]:
            h.update(f"{row['text']}\t{row.get('label')}\n".encode())
    return h.hexdigest()


@stage_main("prepare")
def main() -> None:
    p = stage_params(data=DataParams)
    cfg = p.data
    if (why := corpus_files_outside(cfg)) is not None:
        raise ParamsError(f"{PARAMS_FILE}: {why}")
    raw, corpus = load_corpus(cfg)
    say("prepare", f"read {len(raw)} records from {corpus['name']} (sha256 {corpus['sha256'][:12]})")
    kept, dropped = clean_records(raw, cfg.min_length, cfg.max_length, cfg.length_unit, cfg.keep_labels)
    dropped["oversized_line"] = sum(f.get("oversized_lines", 0) for f in corpus["files"])  # never read (sources.py)
    if cfg.max_examples is not None:
        kept = kept[: cfg.max_examples]
    if not kept:
        raise CorpusError(f"no usable text in source '{cfg.source}' after cleaning ({dropped})")
    try:
        splits = split_records(kept, cfg.valid_fraction, cfg.test_fraction, p.seed)
    except ValueError as err:
        raise CorpusError(str(err)) from None
    for name, rows in splits.items():
        write_jsonl(PREPARED / f"{name}.jsonl", rows)
    stats = {
        "corpus": {"source": cfg.source, **corpus},
        "data_sha256": splits_sha256(splits),
        "raw_records": len(raw),
        "kept": len(kept),
        "dropped": dropped,
        "splits": {k: len(v) for k, v in splits.items()},
        "labels": dict(Counter(r["label"] for r in splits["train"]).most_common()),
        f"mean_{cfg.length_unit}": sum(length(r["text"], cfg.length_unit) for r in kept) / len(kept),
        f"length_histogram_{cfg.length_unit}": length_histogram([r["text"] for r in kept], cfg.length_unit),
    }
    write_json(PREPARED / "stats.json", stats)
    record_params(PREPARED / "params.json", {"seed": p.seed, "data": dump(cfg)})
    say("prepare", f"kept {len(kept)}; splits {stats['splits']}; dropped {dropped}")


if __name__ == "__main__":
    main()
