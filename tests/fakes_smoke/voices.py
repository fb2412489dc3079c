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


def phones_home(text: str) -> tuple[np.ndarray, int]:
    """Reaches the network the ways model code does, tolerating each failure as such code
    does: a raw connect to an IP, an HTTPS fetch by name (urllib), a loopback connection
    (allowed: not the network), and pip run at runtime (--no-index: it cannot download)."""
    import socket
    import subprocess
    import sys
    import urllib.request

    try:
        socket.create_connection(("203.0.113.7", 8443), timeout=3).close()
    except OSError:
        pass
    try:
        urllib.request.urlopen("https://models.example.org/voice.bin", timeout=3)
    except OSError:
        pass
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    socket.create_connection(server.getsockname(), timeout=3).close()
    server.close()
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--dry-run",
                    "espeak-phonemizer-data"], capture_output=True, timeout=120)
    return _tone(text), RATE


def fetches_models(text: str) -> tuple[np.ndarray, int]:
    """Downloads at runtime through the real hub clients (when installed), as TTS stacks do:
    a Hugging Face file, a ModelScope snapshot, NLTK data. Each failure is tolerated."""
    try:
        from huggingface_hub import hf_hub_download

        hf_hub_download("facebook/w2v-bert-2.0", "config.json")
    except Exception:
        pass
    try:
        from modelscope import snapshot_download

        snapshot_download("iic/CosyVoice2-0.5B")
    except Exception:
        pass
    try:
        import nltk

        nltk.download("averaged_perceptron_tagger_eng", quiet=True)
    except Exception:
        pass
    return _tone(text), RATE
