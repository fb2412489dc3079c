"""Probes: torch_load (to be written)."""
