"""Probes: ttsfrd (to be written)."""
