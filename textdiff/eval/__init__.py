"""Metrics: text in, numbers out."""
