"""Probes: numba (to be written)."""
