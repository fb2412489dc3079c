"""tts-doctor: diagnose and repair deployments of PyTorch text-to-speech models.

The package imports nothing heavy at start-up: torch, numpy and scipy are imported only inside
the probes, shims and engines that need them.
"""

__version__ = "0.1.0"
