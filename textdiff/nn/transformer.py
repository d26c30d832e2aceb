"""One pre-norm transformer for every family.

- ``causal=True`` for the AR baseline and autoregressive decoders (with a KV
  cache), ``False`` for denoisers.
- Inputs are token ids (``vocab_size``) or continuous vectors (``input_dim``); a
  token backbone also takes distributions over its vocabulary (B, T, V), embedded
  as their expectation under the token embedding (the simplex family's input).
- Outputs are logits through the tied token embedding, or vectors (``output_dim``).
- ``time_conditioning`` adds adaLN-zero modulation from the diffusion time t.
- ``self_cond_dim`` adds a projection of the previous estimate of x0 to the input
  (equivalent to concatenating it and projecting the concatenation).
- ``positions``: ``rotary`` (RoPE on queries and keys, as the SEDD/MDLM DiT
  backbones) or ``learned`` absolute embeddings (GPT-2). A bidirectional denoiser
  must learn to look at its neighbours through attention alone (an AR model gets
  the current token through the residual stream); with learned absolute positions
  at this scale the discrete rows stayed on the unigram plateau, with rotary
  offsets they read their neighbours (issue 14's evidence). Rotary positions are
  relative only: a canvas that is all noise or all [MASK] has no absolute anchor
  (the continuous rows, which must place <bos> and the padding from pure noise,
  keep learned positions).
- ``cross_dim`` adds, in every block, cross-attention from the sequence to a
  ``memory`` of vectors of that width (the autoencoders' decoders read their latent
  this way). The memory is short, so its keys and values are recomputed on every
  call instead of being cached.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from textdiff.nn.kv_cache import KVCache
from textdiff.nn.time_embedding import TimeEmbedding


@dataclass
class BackboneConfig:
    d_model: int
    n_layers: int
    n_heads: int
    max_len: int
    causal: bool = False
    dropout: float = 0.0
    vocab_size: int | None = None
    input_dim: int | None = None
    output_dim: int | None = None
    time_conditioning: bool = False
    self_cond_dim: int | None = None
    cross_dim: int | None = None
    positions: str = "learned"  # "rotary" | "learned"; the default keeps models saved before rotary loadable

    def __post_init__(self):
        if (self.vocab_size is None) == (self.input_dim is None):
            raise ValueError("BackboneConfig needs exactly one of vocab_size (token input) or input_dim")
        if self.output_dim is None and self.vocab_size is None:
            raise ValueError("BackboneConfig without vocab_size needs output_dim")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} not divisible by n_heads {self.n_heads}")
        if self.positions not in ("rotary", "learned"):
            raise ValueError(f"positions must be 'rotary' or 'learned', not {self.positions!r}")
        if self.positions == "rotary" and (self.d_model // self.n_heads) % 2:
            raise ValueError(f"rotary positions need an even head size; d_model/n_heads = {self.d_model // self.n_heads}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_params(cls, params, **rest) -> "BackboneConfig":
        """From a params section with d_model, n_layers, n_heads, dropout, positions and seq_len (= max_len)."""
        return cls(d_model=params.d_model, n_layers=params.n_layers, n_heads=params.n_heads, max_len=params.seq_len,
                   dropout=params.dropout, positions=params.positions, **rest)


class DenoiserModel(nn.Module):
    """Base of the diffusion models whose compute is one backbone, ``self.denoiser``: the accounting for MFU."""

    denoiser: "Transformer"

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def flops_per_token(self, seq_len: int, training: bool = True) -> float:
        return self.denoiser.flops_per_token(seq_len, training)

    def self_condition_flops_per_token(self, seq_len: int) -> float:
        """Forward FLOPs per position of self-conditioning's no-grad estimate pass: the denoiser (a family
        whose input layers run in that pass too adds them). textdiff.training.flops weighs it by p."""
        return self.denoiser.flops_per_token(seq_len, training=False)


class Attention(nn.Module):
    def __init__(self, cfg: BackboneConfig):
        super().__init__()
        self.n_heads, self.causal, self.dropout = cfg.n_heads, cfg.causal, cfg.dropout
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)

    def forward(self, x: torch.Tensor, cache: KVCache | None, layer: int,
                rope: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_heads, D // self.n_heads).permute(2, 0, 3, 1, 4)
        if rope is not None:
            q, k = rotate(q, *rope), rotate(k, *rope)
        dropout = self.dropout if self.training else 0.0
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal, dropout_p=dropout)
        else:
            start = cache.length
            k, v = cache.append(layer, k, v)
            mask = None
            if T > 1:  # prefill: query i (absolute start + i) sees keys 0 .. start + i
                mask = torch.arange(start + T, device=x.device)[None, :] <= (start + torch.arange(T, device=x.device))[:, None]
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        return self.proj(y.transpose(1, 2).reshape(B, T, D))


def rotary_tables(positions: torch.Tensor, head_dim: int, base: float = 10_000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin (T, head_dim) of RoPE's angles pos·base^(−2i/head_dim), each frequency used for two features."""
    inv = base ** (-torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim)
    angles = positions.float()[:, None] * inv[None]
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE on (B, H, T, hd): the feature pairs (i, i + hd/2) turned by their position's angle."""
    half = x.shape[-1] // 2
    turned = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return (x * cos + turned * sin).to(x.dtype)


class CrossAttention(nn.Module):
    """Queries from the sequence, keys and values from ``memory`` (B, M, cross_dim); no mask."""

    def __init__(self, cfg: BackboneConfig):
        super().__init__()
        self.n_heads, self.dropout = cfg.n_heads, cfg.dropout
        self.q = nn.Linear(cfg.d_model, cfg.d_model)
        self.kv = nn.Linear(cfg.cross_dim, 2 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        hd = D // self.n_heads
        q = self.q(x).view(B, T, self.n_heads, hd).transpose(1, 2)
        k, v = self.kv(memory).view(B, memory.shape[1], 2, self.n_heads, hd).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, T, D))


class Block(nn.Module):
    def __init__(self, cfg: BackboneConfig):
        super().__init__()
        affine = not cfg.time_conditioning
        self.norm1 = nn.LayerNorm(cfg.d_model, elementwise_affine=affine)
        self.attn = Attention(cfg)
        self.norm2 = nn.LayerNorm(cfg.d_model, elementwise_affine=affine)
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, 4 * cfg.d_model), nn.GELU(approximate="tanh"),
                                 nn.Linear(4 * cfg.d_model, cfg.d_model))
        self.drop = nn.Dropout(cfg.dropout)
        self.modulation = nn.Linear(cfg.d_model, 6 * cfg.d_model) if cfg.time_conditioning else None
        if cfg.cross_dim:
            self.norm_cross = nn.LayerNorm(cfg.d_model)
            self.cross_attn = CrossAttention(cfg)
        else:
            self.cross_attn = None

    def forward(self, h: torch.Tensor, cond: torch.Tensor | None, cache: KVCache | None, layer: int,
                memory: torch.Tensor | None = None, rope: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        if self.modulation is None:
            h = h + self.drop(self.attn(self.norm1(h), cache, layer, rope))
            if self.cross_attn is not None:
                h = h + self.drop(self.cross_attn(self.norm_cross(h), memory))
            return h + self.drop(self.mlp(self.norm2(h)))
        if self.cross_attn is not None:
            raise ValueError("cross-attention is built for the causal decoders, without time conditioning")
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(cond)[:, None].chunk(6, dim=-1)
        h = h + gate1 * self.drop(self.attn(self.norm1(h) * (1 + scale1) + shift1, cache, layer, rope))
        return h + gate2 * self.drop(self.mlp(self.norm2(h) * (1 + scale2) + shift2))


class Transformer(nn.Module):
    def __init__(self, cfg: BackboneConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.tok_emb = nn.Embedding(cfg.vocab_size, d) if cfg.vocab_size else None
        self.in_proj = nn.Linear(cfg.input_dim, d) if cfg.input_dim else None
        self.self_cond_proj = nn.Linear(cfg.self_cond_dim, d) if cfg.self_cond_dim else None
        self.pos_emb = nn.Embedding(cfg.max_len, d) if cfg.positions == "learned" else None
        self.time_emb = TimeEmbedding(d) if cfg.time_conditioning else None
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm_out = nn.LayerNorm(d)
        self.out_proj = nn.Linear(d, cfg.output_dim) if cfg.output_dim else None
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
                if getattr(m, "bias", None) is not None:
                    nn.init.zeros_(m.bias)
        for block in self.blocks:  # GPT-2: residual projections scaled by depth
            nn.init.normal_(block.attn.proj.weight, std=0.02 / math.sqrt(2 * self.cfg.n_layers))
            nn.init.normal_(block.mlp[2].weight, std=0.02 / math.sqrt(2 * self.cfg.n_layers))
            if block.cross_attn is not None:
                nn.init.normal_(block.cross_attn.proj.weight, std=0.02 / math.sqrt(2 * self.cfg.n_layers))
            if block.modulation is not None:  # adaLN-zero: each block starts as the identity
                nn.init.zeros_(block.modulation.weight)
                nn.init.zeros_(block.modulation.bias)
        if self.self_cond_proj is not None:
            nn.init.zeros_(self.self_cond_proj.weight)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        if self.tok_emb is None:
            return self.in_proj(x)
        return x @ self.tok_emb.weight if x.is_floating_point() else self.tok_emb(x)

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None, self_cond: torch.Tensor | None = None,
                cache: KVCache | None = None, memory: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: (B, T) token ids, (B, T, V) token distributions or (B, T, input_dim); ``t``: (B,) in [0, 1];
        ``memory``: (B, M, cross_dim) for a backbone with cross-attention; returns (B, T, out)."""
        return self.head(self.hidden(x, t, self_cond, cache, memory))

    def hidden(self, x: torch.Tensor, t: torch.Tensor | None = None, self_cond: torch.Tensor | None = None,
               cache: KVCache | None = None, memory: torch.Tensor | None = None) -> torch.Tensor:
        """Final normalised hidden states (B, T, d_model), before the output head."""
        if (memory is None) != (self.cfg.cross_dim is None):
            raise ValueError("pass memory exactly when the backbone has cross-attention (cross_dim)")
        T = x.shape[1]
        start = cache.length if cache is not None else 0
        if start + T > self.cfg.max_len:
            raise ValueError(f"sequence of {start + T} positions exceeds max_len {self.cfg.max_len}")
        positions = torch.arange(start, start + T, device=x.device)
        h = self.embed(x)
        rope = None
        if self.pos_emb is not None:
            h = h + self.pos_emb(positions)
        else:
            rope = rotary_tables(positions, self.cfg.d_model // self.cfg.n_heads)
        if self.self_cond_proj is not None and self_cond is not None:
            h = h + self.self_cond_proj(self_cond)
        cond = None
        if self.time_emb is not None:
            if t is None:
                raise ValueError("this backbone is time-conditioned: pass t")
            cond = self.time_emb(t)
        h = self.drop(h)
        for i, block in enumerate(self.blocks):
            h = block(h, cond, cache, i, memory, rope)
        if cache is not None:
            cache.advance(T)
        return self.norm_out(h)

    def head(self, h: torch.Tensor) -> torch.Tensor:
        """Logits through the tied token embedding, or the continuous output projection."""
        return self.out_proj(h) if self.out_proj is not None else h @ self.tok_emb.weight.T

    def new_cache(self, batch_size: int, device=None, dtype=None) -> KVCache:
        p = next(self.parameters())
        return KVCache(self.cfg.n_layers, batch_size, self.cfg.n_heads, self.cfg.max_len,
                       self.cfg.d_model // self.cfg.n_heads, device or p.device, dtype or p.dtype)

    # ---------------------------------------------------------------- accounting

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def matmul_parameters(self) -> int:
        """Weights multiplied once per token: every per-token linear layer plus the output head."""
        per_sequence = set()
        if self.time_emb is not None:
            per_sequence |= {id(p) for p in self.time_emb.parameters()}
        for block in self.blocks:
            if block.modulation is not None:
                per_sequence.add(id(block.modulation.weight))
        n = sum(m.weight.numel() for m in self.modules()
                if isinstance(m, nn.Linear) and id(m.weight) not in per_sequence)
        if self.out_proj is None:
            n += self.tok_emb.weight.numel()  # tied head
        return n

    def flops_per_token(self, seq_len: int, training: bool = True) -> float:
        """Dense FLOPs per token (PaLM appendix B): 6N + 12·L·d·T for training, a third of it forward."""
        fwd = 2 * self.matmul_parameters() + 4 * self.cfg.n_layers * self.cfg.d_model * seq_len
        return 3 * fwd if training else fwd
