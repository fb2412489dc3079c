"""Probes: model (to be written)."""
