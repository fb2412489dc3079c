"""Probes: vram (to be written)."""
