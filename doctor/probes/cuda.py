"""Probes: cuda (to be written)."""
