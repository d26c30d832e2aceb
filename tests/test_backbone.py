import pytest
import torch

from textdiff.nn import BackboneConfig, Transformer


def tiny(**kw) -> Transformer:
    torch.manual_seed(0)
    cfg = dict(d_model=32, n_layers=2, n_heads=4, max_len=16, vocab_size=50)
    cfg.update(kw)
    return Transformer(BackboneConfig(**cfg)).eval()


def test_causal_mask_future_tokens_do_not_change_the_past():
    model = tiny(causal=True)
    x = torch.randint(0, 50, (2, 12))
    y = x.clone()
    y[:, 7:] = (y[:, 7:] + 1) % 50
    a, b = model(x), model(y)
    torch.testing.assert_close(a[:, :7], b[:, :7])
    assert not torch.allclose(a[:, 7:], b[:, 7:])


def test_bidirectional_sees_the_future():
    model = tiny(causal=False)
    x = torch.randint(0, 50, (1, 12))
    y = x.clone()
    y[0, 11] = (y[0, 11] + 1) % 50
    assert not torch.allclose(model(x)[:, 0], model(y)[:, 0])


@pytest.mark.parametrize("positions", ["learned", "rotary"])
def test_kv_cache_prefill_and_steps_equal_full_forward(positions):
    model = tiny(causal=True, positions=positions)
    x = torch.randint(0, 50, (3, 14))
    full = model(x)
    cache = model.new_cache(3)
    parts = [model(x[:, :5], cache=cache)] + [model(x[:, i:i + 1], cache=cache) for i in range(5, 14)]
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-4)
    assert cache.length == 14
    with pytest.raises(ValueError, match="max_len"):
        model(torch.zeros(3, 3, dtype=torch.long), cache=cache)


def test_time_conditioning_and_self_conditioning_inputs():
    model = tiny(vocab_size=None, input_dim=8, output_dim=8, time_conditioning=True, self_cond_dim=8).train()
    x, sc = torch.randn(2, 10, 8), torch.randn(2, 10, 8)
    with pytest.raises(ValueError, match="pass t"):
        model(x)
    out = model(x, t=torch.tensor([0.1, 0.9]), self_cond=sc)
    assert out.shape == (2, 10, 8)
    out.pow(2).mean().backward()
    # adaLN-zero and the self-conditioning projection start at zero but must learn
    assert model.blocks[0].modulation.weight.grad.abs().sum() > 0
    assert model.self_cond_proj.weight.grad.abs().sum() > 0
    with torch.no_grad():
        model.blocks[0].modulation.weight.normal_()
    model.eval()
    a = model(x, t=torch.tensor([0.1, 0.1]))
    b = model(x, t=torch.tensor([0.9, 0.9]))
    assert not torch.allclose(a, b)


def test_parameter_count_and_flops_by_hand():
    d, L, V, T = 32, 2, 50, 16
    model = tiny()
    per_block = (d * 3 * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d) + 4 * d  # + 2 LayerNorms
    expected = V * d + T * d + L * per_block + 2 * d
    assert model.num_parameters() == expected
    matmul = L * (3 * d * d + d * d + 8 * d * d) + V * d
    assert model.matmul_parameters() == matmul
    assert model.flops_per_token(T) == 3 * (2 * matmul + 4 * L * d * T)


def test_rotary_attention_scores_depend_only_on_the_offset():
    """RoPE: q_i·k_j after rotation is a function of j − i (shifting both positions leaves it unchanged),
    and rotation keeps the norm."""
    from textdiff.nn.transformer import rotary_tables, rotate

    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 1, 1, 8, generator=g), torch.randn(1, 1, 1, 8, generator=g)

    def score(i: int, j: int) -> float:
        cos, sin = rotary_tables(torch.tensor([i, j]), 8)
        return (rotate(q, cos[:1], sin[:1]) * rotate(k, cos[1:], sin[1:])).sum().item()

    assert score(2, 5) == pytest.approx(score(10, 13), abs=1e-5)
    assert score(2, 5) != pytest.approx(score(2, 6), abs=1e-3)
    cos, sin = rotary_tables(torch.tensor([7]), 8)
    assert rotate(q, cos, sin).norm().item() == pytest.approx(q.norm().item(), rel=1e-6)
    assert score(0, 0) == pytest.approx((q * k).sum().item(), abs=1e-6)  # position 0: no rotation


def test_rotary_backbone_has_no_position_table_and_tells_positions_apart_relative_to_a_token():
    """Rotary positions are relative: a canvas of one token repeated looks the same at every position (as in
    the reference DiT backbones; the canvas's <bos> at position 0 is the anchor), one distinct token makes
    every offset from it visible."""
    model = tiny(causal=False, positions="rotary")
    assert model.pos_emb is None
    same = model(torch.full((1, 6), 7))
    torch.testing.assert_close(same[0, 1], same[0, 4])
    anchored = model(torch.tensor([[8, 7, 7, 7, 7, 7]]))
    assert not torch.allclose(anchored[0, 2], anchored[0, 4])
    with pytest.raises(ValueError, match="positions"):
        tiny(positions="absolute")
