"""Shims that replace broken calls: resample, SciPy removed names, a mel extractor."""
