"""Facts that several probes (and smoke) share, gathered in one place so that probe modules
never import each other: the NVIDIA driver through NVML, PyTorch's wheel indexes, the
installed ttsfrd/KAN-TTS packages, ModelScope's cache layout.

What runs in the worker must stay standard-library-only (CPython 3.7+), like the probes.
"""
