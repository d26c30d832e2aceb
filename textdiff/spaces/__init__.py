"""Spaces: how text becomes a diffusion state and back (the ±k simplex, frozen-encoder features)."""
