"""A mel-spectrogram `torch.nn.Module` with torchaudio's semantics, with or without torchaudio.

`MelSpectrogram` takes torchaudio.transforms.MelSpectrogram's parameters (same names,
defaults and meaning) and gives the same numbers, plus an optional log:

- ``log=None``: the mel power (or magnitude, ``power=1``) spectrogram, as torchaudio;
- ``log="log"``: natural log with a floor, ``log(clamp(x, min=log_floor))`` (HiFi-GAN's
  ``dynamic_range_compression``, floor 1e-5);
- ``log="log-offset"``: ``log(x + log_offset)``, the seed recipe's ``log(x + 1e-9)``;
- ``log="db"``: decibels as torchaudio.transforms.AmplitudeToDB (``amin`` 1e-10, reference
  1.0, optional ``top_db``), ``10 log10`` of power (``20 / power`` x log10 in general).

Backend: torchaudio when its extension loads and is built for the installed torch, else pure
torch (`torch.stft` and the public filterbank formulas, htk and slaney). "Loads" is decided
without risking this process: versions are checked first (a torchaudio built for another
torch release is not imported at all: its extension fails to load, FAILURES.md A1/A2, or
worse), then one subprocess imports torchaudio and runs a tiny transform; the answer is kept
for the process. `backend="torch"` or `"torchaudio"` (or the environment variable
TTS_DOCTOR_MEL_BACKEND) chooses explicitly; the chosen backend and why are in `.backend` and
`.backend_reason`.

Devices and dtypes: CPU and CUDA (move the module with `.to(device)`); float32 and float64
input give that dtype back. float16/bfloat16 input is computed in float32 and returned as
float32: the power of one full-scale frame (about 2.6e5 for n_fft 1024) is above float16's
largest value (65504), and cuFFT's half precision needs power-of-two sizes.

The filterbank follows torchaudio's `melscale_fbanks`: FFT bin frequencies
``linspace(0, sample_rate // 2, n_fft // 2 + 1)`` (librosa uses ``sample_rate / 2``: the same
for even rates), triangles between ``n_mels + 2`` points equally spaced on the mel scale, and
``norm="slaney"`` scales each triangle to unit area (``2 / (f[i+2] - f[i])``). It is computed
in float64 and stored in float32.
"""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from typing import Any, Callable, Optional

import torch
from torch import Tensor

LOG_MODES = (None, "log", "log-offset", "db")
BACKENDS = ("auto", "torch", "torchaudio")
BACKEND_ENV = "TTS_DOCTOR_MEL_BACKEND"

_torchaudio_verdict: Optional[tuple[bool, str]] = None


# --- mel scale and filterbank (public formulas) ---------------------------------------------

def hz_to_mel(freq: float, mel_scale: str = "htk") -> float:
    """Hz -> mel: HTK ``2595 log10(1 + f / 700)``, or Slaney's (linear to 1 kHz, then log)."""
    if mel_scale == "htk":
        return 2595.0 * math.log10(1.0 + freq / 700.0)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    if freq >= min_log_hz:
        return min_log_mel + math.log(freq / min_log_hz) / logstep
    return freq / f_sp


def mel_to_hz(mels: Tensor, mel_scale: str = "htk") -> Tensor:
    """mel -> Hz, the inverse of `hz_to_mel`, elementwise."""
    if mel_scale == "htk":
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    freqs = f_sp * mels
    log_t = mels >= min_log_mel
    return torch.where(log_t, min_log_hz * torch.exp(logstep * (mels - min_log_mel)), freqs)


def melscale_fbanks(n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int,
                    norm: Optional[str] = None, mel_scale: str = "htk",
                    dtype: torch.dtype = torch.float32) -> Tensor:
    """The (n_freqs, n_mels) triangular filterbank, as torchaudio.functional.melscale_fbanks."""
    if norm not in (None, "slaney"):
        raise ValueError(f"norm must be None or 'slaney', got {norm!r}")
    if mel_scale not in ("htk", "slaney"):
        raise ValueError(f"mel_scale must be 'htk' or 'slaney', got {mel_scale!r}")
    f64 = torch.float64
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs, dtype=f64)
    m_min, m_max = hz_to_mel(f_min, mel_scale), hz_to_mel(f_max, mel_scale)
    m_pts = torch.linspace(m_min, m_max, n_mels + 2, dtype=f64)
    f_pts = mel_to_hz(m_pts, mel_scale)
    f_diff = f_pts[1:] - f_pts[:-1]  # (n_mels + 1)
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)  # (n_freqs, n_mels + 2)
    down = (-1.0 * slopes[:, :-2]) / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    fb = torch.clamp(torch.minimum(down, up), min=0.0)
    if norm == "slaney":
        fb = fb * (2.0 / (f_pts[2:n_mels + 2] - f_pts[:n_mels])).unsqueeze(0)
    return fb.to(dtype)


# --- backend choice -------------------------------------------------------------------------

def _release(version: str) -> tuple[int, ...]:
    out = []
    for part in version.split("+")[0].split("."):
        digits = "".join(c for c in part if c.isdigit())
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


def torchaudio_pairing() -> tuple[bool, str]:
    """Whether the installed torchaudio is built for the installed torch, from metadata only
    (torchaudio 2.N pairs with torch 2.N; 0.N with torch 1.N; local tags +cpu/+cuXXX equal)."""
    import importlib.metadata as md

    try:
        ta = md.version("torchaudio")
    except md.PackageNotFoundError:
        return False, "torchaudio is not installed"
    tv = torch.__version__
    ta_rel, t_rel = _release(ta), _release(tv)
    if ta_rel[:1] == (0,):  # torchaudio 0.N was released with torch 1.N
        paired = t_rel[:1] == (1,) and ta_rel[1:2] == t_rel[1:2]
    else:  # torchaudio 2.N with torch 2.N
        paired = ta_rel[:2] == t_rel[:2]
    if not paired:
        return False, (f"torchaudio {ta} is built for another torch release than torch {tv} "
                       "(its extension fails to load: FAILURES.md A1)")
    ta_local = ta.partition("+")[2]
    t_local = tv.partition("+")[2]
    if ta_local and t_local and ta_local != t_local:
        return False, f"torchaudio {ta} and torch {tv} are different builds (A2/A3)"
    return True, f"torchaudio {ta} pairs with torch {tv}"


def torchaudio_loads(timeout: float = 120.0) -> tuple[bool, str]:
    """Whether torchaudio imports and runs a MelSpectrogram here, decided once per process:
    versions first, then a subprocess (a broken extension can crash a process, not just
    raise)."""
    global _torchaudio_verdict
    if _torchaudio_verdict is not None:
        return _torchaudio_verdict
    if importlib.util.find_spec("torchaudio") is None:
        _torchaudio_verdict = (False, "torchaudio is not installed")
        return _torchaudio_verdict
    paired, why = torchaudio_pairing()
    if not paired:
        _torchaudio_verdict = (False, why)
        return _torchaudio_verdict
    if "torchaudio" in sys.modules:  # someone imported it already: it loads
        _torchaudio_verdict = (True, why)
        return _torchaudio_verdict
    code = ("import torch, torchaudio; "
            "torchaudio.transforms.MelSpectrogram(n_fft=64, n_mels=8)(torch.zeros(1, 256))")
    env = {**os.environ, "TTS_DOCTOR_SHIMS": "0"}
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=timeout, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        _torchaudio_verdict = (False, f"checking torchaudio failed: {exc}")
        return _torchaudio_verdict
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        _torchaudio_verdict = (False, f"torchaudio does not load: {tail[:300]}")
    else:
        _torchaudio_verdict = (True, why + "; its extension loads")
    return _torchaudio_verdict


def choose_backend(backend: str = "auto") -> tuple[str, str]:
    """(backend, reason) for `backend` ('auto', 'torch' or 'torchaudio')."""
    requested = os.environ.get(BACKEND_ENV, "").strip() or backend
    if requested not in BACKENDS:
        raise ValueError(f"unknown mel backend {requested!r}; valid: {', '.join(BACKENDS)}")
    if requested == "torch":
        return "torch", "asked for" + (f" ({BACKEND_ENV})" if requested != backend else "")
    if requested == "torchaudio":
        return "torchaudio", "asked for" + (f" ({BACKEND_ENV})" if requested != backend else "")
    loads, why = torchaudio_loads()
    return ("torchaudio", why) if loads else ("torch", why)


# --- the module -----------------------------------------------------------------------------

class MelSpectrogram(torch.nn.Module):
    """torchaudio.transforms.MelSpectrogram's parameters and numbers, plus an optional log.

    Input (..., time) float waveform; output (..., n_mels, frames). See the module docstring
    for the log modes, the backend choice, devices and dtypes.
    """

    def __init__(self, sample_rate: int = 16000, n_fft: int = 400,
                 win_length: Optional[int] = None, hop_length: Optional[int] = None,
                 f_min: float = 0.0, f_max: Optional[float] = None, pad: int = 0,
                 n_mels: int = 128, window_fn: Callable[..., Tensor] = torch.hann_window,
                 power: float = 2.0, normalized: Any = False,
                 wkwargs: Optional[dict[str, Any]] = None, center: bool = True,
                 pad_mode: str = "reflect", onesided: Optional[bool] = None,
                 norm: Optional[str] = None, mel_scale: str = "htk", *,
                 log: Optional[str] = None, log_floor: float = 1e-5, log_offset: float = 1e-9,
                 top_db: Optional[float] = None, backend: str = "auto") -> None:
        super().__init__()
        if onesided is not None and not onesided:
            raise ValueError("onesided=False is not supported (a mel scale needs the "
                             "one-sided spectrum); torchaudio deprecated the argument")
        if log not in LOG_MODES:
            raise ValueError(f"log must be one of {LOG_MODES}, got {log!r}")
        if power is None or not power > 0:
            raise ValueError(f"power must be a positive number, got {power!r}")
        if n_fft <= 0 or n_mels <= 0 or sample_rate <= 0:
            raise ValueError("n_fft, n_mels and sample_rate must be positive")
        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.win_length = win_length if win_length is not None else n_fft
        self.hop_length = hop_length if hop_length is not None else self.win_length // 2
        if self.win_length > n_fft:
            raise ValueError(f"win_length ({self.win_length}) must be <= n_fft ({n_fft})")
        if self.hop_length <= 0:
            raise ValueError(f"hop_length must be positive, got {self.hop_length}")
        self.f_min = float(f_min)
        self.f_max = float(f_max) if f_max is not None else float(sample_rate // 2)
        if not 0 <= self.f_min < self.f_max:
            raise ValueError(f"need 0 <= f_min < f_max, got f_min={f_min}, f_max={f_max}")
        self.pad = pad
        self.n_mels = n_mels
        self.power = float(power)
        self.normalized = normalized
        self.center = center
        self.pad_mode = pad_mode
        self.norm = norm
        self.mel_scale = mel_scale
        self.log = log
        self.log_floor = log_floor
        self.log_offset = log_offset
        self.top_db = top_db
        self._window_fn = window_fn
        self._wkwargs = wkwargs
        self._exact: dict[tuple[str, torch.dtype, torch.device], Tensor] = {}
        self.register_buffer("window", self._make("window", torch.float32))
        self.register_buffer("fb", self._make("fb", torch.float32))
        self.backend, self.backend_reason = choose_backend(backend)
        self._ta: Optional[torch.nn.Module] = None
        if self.backend == "torchaudio":
            import torchaudio

            self._ta = torchaudio.transforms.MelSpectrogram(
                sample_rate=sample_rate, n_fft=n_fft, win_length=win_length,
                hop_length=hop_length, f_min=f_min, f_max=f_max, pad=pad, n_mels=n_mels,
                window_fn=window_fn, power=power, normalized=normalized, wkwargs=wkwargs,
                center=center, pad_mode=pad_mode, norm=norm, mel_scale=mel_scale)

    def extra_repr(self) -> str:
        return (f"sample_rate={self.sample_rate}, n_fft={self.n_fft}, "
                f"hop_length={self.hop_length}, n_mels={self.n_mels}, log={self.log!r}, "
                f"backend={self.backend!r}")

    def _make(self, which: str, dtype: torch.dtype) -> Tensor:
        if which == "window":
            kwargs = dict(self._wkwargs or {})
            try:
                w = self._window_fn(self.win_length, **{"dtype": torch.float64, **kwargs})
            except TypeError:  # a window function of the user's without a dtype argument
                w = self._window_fn(self.win_length, **kwargs)
            return w.to(dtype)
        return melscale_fbanks(self.n_fft // 2 + 1, self.f_min, self.f_max, self.n_mels,
                               self.sample_rate, self.norm, self.mel_scale, dtype=dtype)

    def _buffer(self, which: str, like: Tensor) -> Tensor:
        """The window or filterbank in `like`'s dtype and device, recomputed from the formula
        when the stored buffer is less precise (module.half() converts buffers; float64
        input deserves a float64 filterbank)."""
        buf: Tensor = getattr(self, which)
        if torch.finfo(buf.dtype).eps <= torch.finfo(like.dtype).eps:
            return buf.to(device=like.device, dtype=like.dtype)
        key = (which, like.dtype, like.device)
        if key not in self._exact:
            self._exact[key] = self._make(which, like.dtype).to(like.device)
        return self._exact[key]

    def _spectrogram(self, x: Tensor) -> Tensor:
        if self.pad > 0:
            x = torch.nn.functional.pad(x, (self.pad, self.pad), "constant")
        frame_norm = self.normalized == "frame_length"
        window_norm = self.normalized is True or self.normalized == "window"
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        window = self._buffer("window", x)
        spec = torch.stft(x, n_fft=self.n_fft, hop_length=self.hop_length,
                          win_length=self.win_length, window=window, center=self.center,
                          pad_mode=self.pad_mode, normalized=frame_norm, onesided=True,
                          return_complex=True)
        spec = spec.reshape(shape[:-1] + spec.shape[-2:])
        if window_norm:
            spec = spec / window.pow(2.0).sum().sqrt()
        mag = spec.abs()
        return mag if self.power == 1.0 else mag.pow(self.power)

    def _apply_log(self, mel: Tensor) -> Tensor:
        if self.log is None:
            return mel
        if self.log == "log":
            return torch.log(torch.clamp(mel, min=self.log_floor))
        if self.log == "log-offset":
            return torch.log(mel + self.log_offset)
        multiplier = 20.0 / self.power
        db = multiplier * torch.log10(torch.clamp(mel, min=1e-10))
        if self.top_db is not None:
            shape = db.shape
            channels = shape[-3] if db.dim() > 2 else 1
            packed = db.reshape(-1, channels, shape[-2], shape[-1])
            floor = packed.amax(dim=(-3, -2, -1)) - self.top_db
            db = torch.max(packed, floor.view(-1, 1, 1, 1)).reshape(shape)
        return db

    def forward(self, waveform: Tensor) -> Tensor:
        if not torch.is_tensor(waveform) or not waveform.is_floating_point():
            raise TypeError("MelSpectrogram expects a floating-point torch.Tensor "
                            f"(..., time), got {type(waveform).__name__}"
                            + (f" of {waveform.dtype}" if torch.is_tensor(waveform) else ""))
        x = waveform
        if x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()
        if self._ta is not None:
            mel = self._ta.to(x.device)(x)
        else:
            spec = self._spectrogram(x)
            fb = self._buffer("fb", spec)
            mel = torch.matmul(spec.transpose(-1, -2), fb).transpose(-1, -2)
        return self._apply_log(mel)
