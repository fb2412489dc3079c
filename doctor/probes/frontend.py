"""Probes: frontend (to be written)."""
