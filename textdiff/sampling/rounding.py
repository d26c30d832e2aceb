"""Exact nearest-embedding rounding (L2), with FAISS or torch finding the candidates.

Both backends shortlist ``candidates`` rows by fast float32 search, then
re-rank the shortlist by exact float64 distance with ties broken towards the
lowest row index, so they return identical tokens. Queries and table are
centred on the table mean first: L2 distance is unchanged by a shared shift,
and float32 keeps its precision when every embedding sits far from the origin.

The FAISS index is cached and rebuilt only when the table changes (new
storage, shape, device, or an in-place update such as an optimiser step).
"""

from __future__ import annotations

import numpy as np
import torch

BACKENDS = ("faiss", "torch")


class NearestEmbedding:
    def __init__(self, backend: str = "faiss", candidates: int = 16):
        if backend not in BACKENDS:
            raise ValueError(f"unknown rounding backend {backend!r}; known: {BACKENDS}")
        self.backend, self.candidates = backend, candidates
        self._key = None
        self._index = None
        self._mean = None
        self.builds = 0

    def __call__(self, queries: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """Row index of the nearest ``table`` row for each query; queries (..., D), table (V, D)."""
        shape = queries.shape[:-1]
        q = queries.detach().reshape(-1, queries.shape[-1])
        table = table.detach()
        k = min(self.candidates, table.shape[0])
        if self.backend == "faiss":
            cand = self._faiss_candidates(q, table, k)
        else:
            cand = self._torch_candidates(q, table, k)
        return _exact_rerank(q, table, cand).reshape(shape)

    # ---------------------------------------------------------------- backends

    def _torch_candidates(self, q: torch.Tensor, table: torch.Tensor, k: int) -> torch.Tensor:
        mean = table.mean(0, keepdim=True)
        centred = table - mean
        scores = (q - mean) @ centred.T * 2 - (centred * centred).sum(1)  # −‖q−e‖² + ‖q‖²
        return scores.topk(k, dim=1).indices

    def _faiss_candidates(self, q: torch.Tensor, table: torch.Tensor, k: int) -> torch.Tensor:
        import faiss

        self._ensure_index(table)
        queries = np.ascontiguousarray((q - self._mean).float().cpu().numpy())
        _, idx = self._index.search(queries, k)
        return torch.from_numpy(idx).to(q.device)

    def _ensure_index(self, table: torch.Tensor) -> None:
        import faiss

        key = (table.data_ptr(), tuple(table.shape), str(table.device), table._version)
        if key == self._key:
            return
        self._mean = table.mean(0, keepdim=True)
        rows = np.ascontiguousarray((table - self._mean).float().cpu().numpy())
        index = faiss.IndexFlatL2(rows.shape[1])
        if table.is_cuda and hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
            index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), table.device.index or 0, index)
        index.add(rows)
        self._index, self._key = index, key
        self.builds += 1


def _exact_rerank(q: torch.Tensor, table: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
    """Among each query's candidates, the exact (float64) nearest; ties go to the lowest index."""
    rows = table.double()[cand]  # (N, k, D)
    dist = ((rows - q.double()[:, None, :]) ** 2).sum(-1)
    best = dist.min(dim=1, keepdim=True).values
    tied = torch.where(dist == best, cand, torch.full_like(cand, torch.iinfo(cand.dtype).max))
    return tied.min(dim=1).values


def clamp_to_embeddings(x0: torch.Tensor, table: torch.Tensor, nearest: NearestEmbedding) -> torch.Tensor:
    """Replace each vector by its nearest embedding row (Diffusion-LM's clamping trick)."""
    return table.detach()[nearest(x0, table)].to(x0.dtype)
