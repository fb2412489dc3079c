"""Waveforms in and out: mono float32 conversion, crossfaded joins, atomic WAV writes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tts_doctor import atomic
from tts_doctor.smoke.engine import SynthesisContractError

TEXT_CROSSFADE_S = 0.010  # joining separately synthesized text chunks


def to_mono_float(samples: Any) -> Any:
    """A 1-D float32 numpy array from what an engine returns (numpy, torch, list; int16 PCM
    is scaled to [-1, 1]; (1, N) / (N, 1) are squeezed; more channels are refused)."""
    import numpy as np

    if hasattr(samples, "detach"):  # a torch tensor, without importing torch
        samples = samples.detach().float().cpu().numpy()
    try:
        x = np.asarray(samples)
    except Exception as exc:
        raise SynthesisContractError(f"samples are not an array: {type(samples).__name__} "
                                     f"({exc})") from None
    if x.dtype == object or x.dtype.kind not in "fiub":
        raise SynthesisContractError(f"samples have dtype {x.dtype}, not numbers")
    if x.ndim == 2 and 1 in x.shape:
        x = x.reshape(-1)
    if x.ndim != 1:
        raise SynthesisContractError(f"samples have shape {tuple(x.shape)}; a mono waveform "
                                     "(N,) is expected")
    if x.dtype == np.int16:
        return (x.astype(np.float32) / 32768.0)
    if x.dtype.kind in "iu":
        info = np.iinfo(x.dtype)
        return (x.astype(np.float64) / max(abs(info.min), info.max)).astype(np.float32)
    return x.astype(np.float32, copy=False)


def crossfade_concat(pieces: list[Any], overlap: int) -> Any:
    """Join waveforms, overlapping consecutive ones by `overlap` samples with a linear fade."""
    import numpy as np

    pieces = [p for p in pieces if len(p)]
    if not pieces:
        return np.zeros(0, dtype=np.float32)
    out = pieces[0].astype(np.float32, copy=True)
    for p in pieces[1:]:
        n = min(overlap, len(out), len(p))
        if n <= 0:
            out = np.concatenate([out, p])
            continue
        ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
        mid = out[-n:] * (1 - ramp) + p[:n] * ramp
        out = np.concatenate([out[:-n], mid, p[n:]])
    return out


def write(path: str, samples: Any, sample_rate: int) -> int:
    """Write mono 16-bit PCM WAV atomically (non-finite samples become 0); returns bytes
    written. The standard library's `wave` does it: no libsndfile needed, so a smoke run
    never fails on the audio I/O it is not testing."""
    import wave

    import numpy as np

    x = np.nan_to_num(np.asarray(samples, dtype=np.float32), nan=0.0, posinf=1.0,
                      neginf=-1.0)
    pcm = (np.clip(x, -1.0, 1.0) * 32767.0).round().astype("<i2")
    target = Path(path)
    if str(target.parent):
        target.parent.mkdir(parents=True, exist_ok=True)
    with atomic.atomic_path(target) as tmp:
        with wave.open(str(tmp), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(int(sample_rate))
            out.writeframes(pcm.tobytes())
    return os.path.getsize(target)


def read(source: Any) -> tuple[Any, int]:
    """(float32 mono samples, sample rate) from a PCM WAV (a path, bytes or a file object);
    the first channel of a multichannel file. 8/16/24/32-bit integer PCM."""
    import io
    import wave

    import numpy as np

    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    with wave.open(source if not isinstance(source, Path) else str(source), "rb") as f:
        channels, width, rate = f.getnchannels(), f.getsampwidth(), f.getframerate()
        raw = f.readframes(f.getnframes())
    if width == 3:  # 24-bit: widen to 32
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        raw = np.concatenate([np.zeros((len(b), 1), np.uint8), b], axis=1).tobytes()
        width = 4
    dtype = {1: np.uint8, 2: "<i2", 4: "<i4"}.get(width)
    if dtype is None:
        raise ValueError(f"unsupported WAV sample width: {width} bytes")
    x = np.frombuffer(raw, dtype=dtype).astype(np.float32)
    x = (x - 128.0) / 128.0 if width == 1 else x / float(2 ** (8 * width - 1))
    if channels > 1:
        x = x.reshape(-1, channels)[:, 0]
    return np.ascontiguousarray(x, dtype=np.float32), int(rate)


def check_writable(path: str, what: str) -> None:
    """Fail early (ValueError) when an output file could not be written at the end."""
    p = Path(path)
    if p.exists() and p.is_dir():
        raise ValueError(f"{what} {path} is a directory")
    parent = p.parent if str(p.parent) else Path(".")
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"{what} {path}: {probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {path}: {probe} is not writable")
