"""Corpus sources, cleaning, splits, tokenizers and batching."""
