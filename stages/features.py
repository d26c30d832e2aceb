"""features: MiniLM's encodings of the training and test splits, computed once for every row that reads them.

The encoder rows' spaces and decoders and the latent rows' autoencoders and latent datasets all need the
frozen MiniLM's last hidden states of the same sentences. Run per row, that was the same 50-second encoder
pass four or five times over. This stage writes data/features/SPLIT (a ``FeatureCache``) and
metrics/features.json; ``encodings`` hands a stage the cached split when it holds exactly the sentences and
canvas asked for, and encodes them itself otherwise (a row whose ``space.max_length`` is not
``features.max_length``). It runs whatever the rows are, so that its outputs depend on its own params only.
"""

from __future__ import annotations

import time
from pathlib import Path

from stages.common import METRICS, PREPARED, dump, params, say, stage_main
from textdiff.io import read_jsonl, write_json

FEATURES = Path("data/features")
SPLITS = ("train", "test")


@stage_main("features")
def main() -> None:
    from textdiff.device import resolve_device
    from textdiff.spaces.minilm import FeatureCache

    p = params()
    device = resolve_device(p.device)
    record = {"params": dump(p.features), "splits": {}}
    for split in SPLITS:
        texts = [r["text"] for r in read_jsonl(PREPARED / f"{split}.jsonl")]
        t0 = time.perf_counter()
        cache = FeatureCache.build(texts, "encodings", p.features.max_length, p.features.batch_size, device)
        cache.save(FEATURES / split)
        record["splits"][split] = {"sentences": len(texts), "tokens": int(cache.offsets[-1]),
                                   "encode_wall_s": time.perf_counter() - t0}
        say("features", f"{split}: MiniLM encodings of {len(texts)} sentences in "
                        f"{record['splits'][split]['encode_wall_s']:.1f}s")
    write_json(METRICS / "features.json", record)


def encodings(split: str, texts: list[str], max_length: int, batch_size: int, device, stage: str,
              kind: str = "encodings"):
    """MiniLM ``kind`` features of ``texts``, the first sentences of ``split``: the features stage's cache (cut
    to ``len(texts)``) when it holds them at ``max_length``, else computed here (input ``embeddings`` always:
    a table lookup the stage does not cache)."""
    from textdiff.spaces.minilm import CACHE_FILE, FeatureCache

    if kind == "encodings" and (FEATURES / split / CACHE_FILE).exists():
        cache = FeatureCache.load(FEATURES / split).head(len(texts))
        if cache.holds(texts, "encodings", max_length):
            return cache
    if kind == "encodings":
        say(stage, f"encoding {len(texts)} {split} sentences with MiniLM here (data/features holds another "
                   "canvas or corpus)")
    return FeatureCache.build(texts, kind, max_length, batch_size, device)


if __name__ == "__main__":
    main()
