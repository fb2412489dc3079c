"""Probes: audio (to be written)."""
