"""MAUVE between generated and reference text, on MiniLM sentence features.

mauve-text's default featuriser (GPT-2 large) would need the hub; we give it
precomputed features instead, so it runs offline. The features are computed once
(``sentence_features``) and ``mauve_from_features`` can be called on them as often
as wanted (the bootstrap in textdiff.eval.intervals does).
"""

from __future__ import annotations

import numpy as np

from textdiff.frozen_encoder import sentence_encoder


def sentence_features(texts: list[str], batch_size: int = 64, device: str = "cpu") -> np.ndarray:
    return sentence_encoder(device).encode(texts, batch_size=batch_size, convert_to_numpy=True,
                                           normalize_embeddings=True, show_progress_bar=False)


def mauve_features(generated: list[str], references: list[str], device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """(p, q): MiniLM features of the first n = min(len) texts of each side (MAUVE compares equal counts)."""
    n = min(len(generated), len(references))
    if n < 2:
        raise ValueError(f"mauve needs at least 2 texts on each side (got {len(generated)} and {len(references)})")
    return sentence_features(generated[:n], device=device), sentence_features(references[:n], device=device)


def mauve_from_features(p: np.ndarray, q: np.ndarray, scaling: float = 5.0, seed: int = 0) -> float:
    """mauve-text's compute_mauve on precomputed feature rows (k-means quantisation with ``seed``)."""
    import mauve as mauve_text

    if min(len(p), len(q)) < 2:
        raise ValueError(f"mauve needs at least 2 texts on each side (got {len(p)} and {len(q)})")
    out = mauve_text.compute_mauve(p_features=p, q_features=q, mauve_scaling_factor=scaling, seed=seed,
                                   verbose=False, num_buckets="auto")
    return float(out.mauve)


def mauve(generated: list[str], references: list[str], scaling: float = 5.0, seed: int = 0,
          device: str = "cpu") -> float:
    """MAUVE on equal counts (the first min(len) of each); 1 = same distribution."""
    p, q = mauve_features(generated, references, device=device)
    return mauve_from_features(p, q, scaling, seed)
