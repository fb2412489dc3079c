"""Probes: compat (to be written)."""
