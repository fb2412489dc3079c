"""Probes: shims (to be written)."""
