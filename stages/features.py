"""features: MiniLM's encodings of the training and test splits, computed once for every row that reads them.

The encoder rows' spaces and decoders and the latent rows' autoencoders and latent datasets all need the
frozen MiniLM's last hidden states of the same sentences. Run per row, that was the same 50-second encoder
pass four or five times over. This stage writes data/features/SPLIT (a ``FeatureCache``) and
metrics/features.json; ``textdiff.spaces.minilm.cached_features`` hands a stage the cached split when it holds
exactly the sentences and canvas asked for, and encodes them itself otherwise (a row whose ``space.max_length``
is not ``features.max_length``). It runs whatever the rows are, so that its outputs depend on its own params only.
"""

from __future__ import annotations

import time

from stages.common import FEATURES, METRICS, PREPARED, dump, say, stage_main, stage_params
from textdiff.io import read_jsonl, write_json
from textdiff.params.data import FeaturesParams

SPLITS = ("train", "test")


@stage_main("features")
def main() -> None:
    from textdiff.device import resolve_device
    from textdiff.spaces.minilm import FeatureCache

    p = stage_params(features=FeaturesParams)
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


if __name__ == "__main__":
    main()
