"""Waveforms in and out: mono float32 conversion, crossfaded joins, atomic WAV writes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from doctor import atomic
from doctor.smoke.engine import SynthesisContractError

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
    """Write 16-bit PCM WAV atomically (non-finite samples become 0); returns bytes written."""
    import numpy as np
    import soundfile as sf

    x = np.nan_to_num(np.asarray(samples, dtype=np.float32), nan=0.0, posinf=1.0,
                      neginf=-1.0)
    x = np.clip(x, -1.0, 1.0)
    target = Path(path)
    if str(target.parent):
        target.parent.mkdir(parents=True, exist_ok=True)
    with atomic.atomic_path(target) as tmp:
        sf.write(str(tmp), x, int(sample_rate), subtype="PCM_16", format="WAV")
    return os.path.getsize(target)


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
