"""Synthesis functions for the callable engine (`--callable tests.fakes_smoke.voices:NAME`).

Each returns (samples, sample_rate) like a user's own function. Some misbehave on purpose:
a planted leak, NaN in half precision, out-of-memory on long text, a wrong return type.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

RATE = 16000
_KEPT: list[Any] = []  # the planted leak's victims: never released
LEAK_BYTES = 32 * 2 ** 20


def _tone(text: str, rate: int = RATE) -> np.ndarray:
    n = int(rate * 0.07 * len(text))
    t = np.arange(n) / rate
    return (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)


def speak(text: str) -> tuple[np.ndarray, int]:
    """A well-behaved function: a tone as long as read speech would be."""
    return _tone(text), RATE


def leaky(text: str) -> tuple[np.ndarray, int]:
    """Keeps 32 MiB of numpy memory per call (touched, so it is resident): a leak only RSS
    can see (no torch tensors)."""
    _KEPT.append(np.ones(LEAK_BYTES // 8, dtype=np.float64))
    return _tone(text), RATE


def leaky_torch(text: str) -> tuple[np.ndarray, int]:
    """Keeps a 16 MiB torch tensor per call: the live-tensor walk sees it."""
    import torch

    _KEPT.append(torch.ones(4 * 2 ** 20))
    return _tone(text), RATE


def half_breaks(text: str, precision: str = "fp32") -> tuple[np.ndarray, int]:
    """fp32 runs out of memory on text over 30 characters; fp16/bf16 return NaN
    (FAILURES.md C4 and C5 at once)."""
    import torch

    if precision in ("fp16", "bf16"):
        x = _tone(text)
        x[::7] = np.nan
        return x, RATE
    if len(text) > 30:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB "
                                     "(simulated by tests/fakes_smoke/voices.py)")
    return _tone(text), RATE


def staged(text: str, stage: Any) -> tuple[np.ndarray, int]:
    """Marks its own stages through the profiler it is handed."""
    with stage("frontend"):
        ids = [ord(c) for c in text]
    with stage("acoustic"):
        frames = np.repeat(np.asarray(ids, dtype=np.float32), 6)
    with stage("vocoder"):
        x = _tone(text) * (1.0 if len(frames) else 0.0)
    return x, RATE


def from_wav(text: str) -> tuple[np.ndarray, int]:
    """Plays back the WAV named by $SMOKE_WAV, scaled by $SMOKE_GAIN (default 1)."""
    from tts_doctor.smoke import wav

    x, rate = wav.read(os.environ["SMOKE_WAV"])
    return x * float(os.environ.get("SMOKE_GAIN", "1")), rate


def wrong_type(text: str) -> Any:
    return "not audio"


def raises(text: str) -> Any:
    raise ValueError("the model exploded")


def clipped(text: str) -> tuple[np.ndarray, int]:
    """A tone driven far past full scale and clipped: most samples sit at +-1."""
    return np.clip(_tone(text) * 50, -1, 1), RATE
