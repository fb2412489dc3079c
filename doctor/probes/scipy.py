"""Probes: scipy (to be written)."""
