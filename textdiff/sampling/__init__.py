"""Samplers and the pieces they share."""
