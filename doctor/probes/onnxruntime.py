"""Probes: onnxruntime (to be written)."""
