"""Probes: torchaudio (to be written)."""
