"""Probes: numpy (to be written)."""
