"""Nearest-embedding rounding: FAISS and torch agree with exact brute force."""

import pytest
import torch

from textdiff.sampling.rounding import NearestEmbedding, clamp_to_embeddings


def brute_force(q: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    d = ((q.double()[:, None, :] - table.double()[None]) ** 2).sum(-1)  # exact, no matmul shortcut
    best = d.min(1, keepdim=True).values
    idx = torch.arange(table.shape[0]).expand_as(d)
    return torch.where(d == best, idx, table.shape[0]).min(1).values  # lowest index among ties


def agree(q, table):
    f, t = NearestEmbedding("faiss")(q, table), NearestEmbedding("torch")(q, table)
    ref = brute_force(q, table)
    assert torch.equal(f, t) and torch.equal(f, ref)


def test_random_inputs():
    g = torch.Generator().manual_seed(0)
    agree(torch.randn(2000, 16, generator=g), torch.randn(3000, 16, generator=g))
    agree(torch.randn(500, 128, generator=g) * 0.1, torch.randn(1000, 128, generator=g))


def test_ties_go_to_the_lowest_index():
    g = torch.Generator().manual_seed(1)
    base = torch.randn(50, 8, generator=g)
    table = torch.cat([base, base, base])  # every row three times
    q = base + 0.01 * torch.randn(50, 8, generator=g)
    agree(q, table)
    assert (NearestEmbedding("faiss")(q, table) < 50).all()
    # a query exactly between two rows
    table = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [5.0, 5.0]])
    assert NearestEmbedding("faiss")(torch.zeros(1, 2), table).item() == 0
    assert NearestEmbedding("torch")(torch.zeros(1, 2), table).item() == 0


def test_large_norms():
    g = torch.Generator().manual_seed(2)
    offset = torch.full((1, 16), 1e4)
    table = offset + torch.randn(400, 16, generator=g)
    agree(offset + torch.randn(300, 16, generator=g), table)
    table = torch.randn(400, 16, generator=g) * 1e3  # spread far from the origin
    agree(torch.randn(300, 16, generator=g) * 1e3, table)


def test_batched_shapes_and_clamp_returns_exact_rows():
    table = torch.randn(100, 8)
    x = table[torch.randint(0, 100, (4, 6))] + 0.05 * torch.randn(4, 6, 8)
    nearest = NearestEmbedding("faiss")
    idx = nearest(x, table)
    assert idx.shape == (4, 6)
    clamped = clamp_to_embeddings(x, table, nearest)
    assert torch.equal(clamped, table[idx])
    rows = {tuple(r.tolist()) for r in table}
    assert all(tuple(v.tolist()) in rows for v in clamped.reshape(-1, 8))


def test_index_is_cached_and_rebuilt_when_the_table_changes():
    table = torch.nn.Parameter(torch.randn(200, 8))
    nearest = NearestEmbedding("faiss")
    q = torch.randn(10, 8)
    nearest(q, table)
    nearest(q, table)
    assert nearest.builds == 1
    with torch.no_grad():
        table.mul_(2)  # an in-place optimiser-style update
    assert torch.equal(nearest(q, table), brute_force(q, table))
    assert nearest.builds == 2


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown rounding backend 'annoy'"):
        NearestEmbedding("annoy")
