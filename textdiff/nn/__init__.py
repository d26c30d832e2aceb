"""The one transformer backbone shared by every family."""

from textdiff.nn.kv_cache import KVCache
from textdiff.nn.transformer import BackboneConfig, DenoiserModel, Transformer

__all__ = ["BackboneConfig", "DenoiserModel", "KVCache", "Transformer"]
