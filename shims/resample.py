"""Band-limited resampling that works on every SciPy, and a drop-in for `scipy.signal.resample`.

`resample(x, orig_sr, target_sr)` converts audio between sample rates with a real
anti-aliasing resampler: soxr (the default when installed), SciPy's polyphase filter, or
resampy's band-limited sinc. Whatever the backend, the output has the input's dtype and
exactly ``ceil(n * target_sr / orig_sr)`` samples along the time axis, where the product is
computed exactly (rational arithmetic, no float rounding): every output sample ``k`` lies at
time ``k / target_sr`` strictly inside the input's span ``[0, n / orig_sr)``. The backends
disagree on this by themselves (soxr rounds half up, resampy floors, resample_poly takes the
ceiling), so the shim gives each one a few samples of zero padding (the silence every
band-limited resampler assumes past the end) and keeps exactly that many.

Failure is never silent: an unknown backend or quality name (the seed recipe's `sinc_best`),
NaN or inf samples, a non-positive rate or an empty array raise `ValueError`; a backend that
fails raises `RuntimeError` naming it. The input is never handed back as if it had been
resampled.

`signal_resample(x, num, t=None, axis=0, window=None, domain='time')` has
`scipy.signal.resample`'s exact signature and return values (`y`, or `(y, t)` when `t` is
given) and is what the `resample` shim installs as `scipy.signal.resample`. It resamples
real float input with the band-limited resampler (fast for every length, where the FFT
method is up to 14x slower on lengths with large prime factors, scipy#9273). Where the caller
relies on FFT semantics that a band-limited resampler cannot reproduce, it calls the original
SciPy function: a `window`, `domain='freq'`, complex input, non-finite samples, float16,
non-NumPy arrays, and lengths below 2.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import numbers
from fractions import Fraction
from typing import Any, Callable, Optional

import numpy as np

SHIM_NAME = "resample"
BACKENDS = ("soxr", "scipy", "resampy")
AUTO_ORDER = ("soxr", "scipy", "resampy")

# Valid quality names per backend -> that backend's own setting. "hq" is valid everywhere.
QUALITIES: dict[str, dict[str, str]] = {
    "soxr": {"vhq": "VHQ", "hq": "HQ", "mq": "MQ", "lq": "LQ", "qq": "QQ"},
    # resampy's filters are kaiser_best and kaiser_fast (sinc_window needs a hand-made
    # filter); "hq" maps to kaiser_best, "lq" to kaiser_fast.
    "resampy": {"kaiser_best": "kaiser_best", "kaiser_fast": "kaiser_fast",
                "hq": "kaiser_best", "lq": "kaiser_fast"},
    # SciPy's polyphase filter. "mq" is resample_poly's own default (a Kaiser(5.0) window of
    # 20*max(up, down)+1 taps, cut-off at the new Nyquist: weak just above it). "hq" and "vhq"
    # are Kaiser designs with the pass band to 0.85 x Nyquist and 80 / 100 dB of stop band
    # from the new Nyquist up: longer filters, slower (see benchmarks/bench_resample.py).
    "scipy": {"vhq": "100", "hq": "80", "mq": "default"},
}
PASS_EDGE = 0.85
# Ratios whose reduced fraction needs a larger factor than this are refused by the polyphase
# backend (its filter and memory grow with the factor); soxr handles any ratio.
MAX_POLYPHASE_FACTOR = 4096


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def available_backends() -> list[str]:
    """The backends importable here, in the order `backend="auto"` tries them."""
    need = {"soxr": "soxr", "scipy": "scipy", "resampy": "resampy"}
    return [b for b in AUTO_ORDER if _installed(need[b])]


def _choose(backend: str, quality: str) -> tuple[str, str]:
    """(backend, backend-specific quality setting), or ValueError naming the valid choices."""
    if not isinstance(backend, str) or backend not in (*BACKENDS, "auto"):
        raise ValueError(f"unknown resample backend {backend!r}; valid: auto, "
                         + ", ".join(BACKENDS))
    if not isinstance(quality, str):
        raise ValueError(f"quality must be a name, got {quality!r}")
    q = quality.lower()
    if backend == "auto":
        owners = [b for b in AUTO_ORDER if q in QUALITIES[b]]
        if not owners:
            raise ValueError(_bad_quality(quality, None))
        present = available_backends()
        usable = [b for b in owners if b in present]
        if not usable:
            raise ImportError(f"no resample backend installed for quality {quality!r} "
                              f"(it needs {' or '.join(owners)}): pip install "
                              f"{owners[0]}")
        backend = usable[0]
    elif q not in QUALITIES[backend]:
        raise ValueError(_bad_quality(quality, backend))
    elif backend not in available_backends():
        raise ImportError(f"resample backend {backend!r} is not installed: "
                          f"pip install {backend}")
    return backend, QUALITIES[backend][q]


def _bad_quality(quality: str, backend: Optional[str]) -> str:
    if backend is None:
        valid = "; ".join(f"{b}: {', '.join(QUALITIES[b])}" for b in BACKENDS)
        return f"unknown resample quality/filter {quality!r}; valid names by backend: {valid}"
    return (f"unknown quality/filter {quality!r} for resample backend {backend!r}; valid: "
            f"{', '.join(QUALITIES[backend])}")


def _rate(value: Any, what: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{what} must be a positive number, got {value!r}")
    f = float(value)
    if not math.isfinite(f) or f <= 0:
        raise ValueError(f"{what} must be a positive finite number, got {value!r}")
    return Fraction(value) if isinstance(value, numbers.Rational) else Fraction(f)


def output_length(n: int, orig_sr: float, target_sr: float) -> int:
    """Samples `resample` returns for `n` input samples: ceil(n * target_sr / orig_sr), exact."""
    ratio = _rate(target_sr, "target_sr") / _rate(orig_sr, "orig_sr")
    return -((-n * ratio.numerator) // ratio.denominator)


def _check_array(x: Any, axis: int) -> tuple[np.ndarray, int]:
    arr = np.asarray(x)
    if arr.dtype not in (np.float32, np.float64):
        raise ValueError(f"resample needs float32 or float64 samples, got {arr.dtype} "
                         "(convert int16 PCM with x.astype(np.float32) / 32768)")
    if arr.ndim == 0:
        raise ValueError("resample needs an array of samples, got a scalar")
    if not -arr.ndim <= axis < arr.ndim:
        raise ValueError(f"axis {axis} is out of range for an array of {arr.ndim} dimensions")
    axis %= arr.ndim
    if arr.shape[axis] == 0 or arr.size == 0:
        raise ValueError(f"resample got an empty array (shape {arr.shape})")
    if not np.isfinite(arr).all():
        raise ValueError("resample got NaN or infinite samples; resampling would spread them "
                         "over the whole output (find where they come from, or "
                         "np.nan_to_num first)")
    return arr, axis


def _pad(arr: np.ndarray, axis: int, extra: int) -> np.ndarray:
    widths = [(0, 0)] * arr.ndim
    widths[axis] = (0, extra)
    return np.pad(arr, widths)


def _fit(y: np.ndarray, axis: int, n_out: int) -> np.ndarray:
    """Keep the first n_out samples along axis (backends were given enough to produce them)."""
    have = y.shape[axis]
    if have < n_out:  # cannot happen with the padding below; never pad the output
        raise RuntimeError(f"resampler produced {have} samples, expected {n_out}")
    if have == n_out:
        return y
    index = [slice(None)] * y.ndim
    index[axis] = slice(0, n_out)
    return y[tuple(index)]


def _soxr(arr: np.ndarray, axis: int, orig: Fraction, target: Fraction, setting: str,
          n_out: int) -> np.ndarray:
    import soxr

    exact = arr.shape[axis] * target / orig
    # soxr rounds the output length to nearest; give it the samples that rounding drops.
    if 0 < exact - math.floor(exact) <= Fraction(1, 2):
        arr = _pad(arr, axis, math.ceil(orig / target) + 1)
    moved = np.moveaxis(arr, axis, 0)
    frames = moved.reshape(moved.shape[0], -1) if moved.ndim > 2 else moved
    y = soxr.resample(np.ascontiguousarray(frames), float(orig), float(target), setting)
    if moved.ndim > 2:
        y = y.reshape((y.shape[0], *moved.shape[1:]))
    y = np.moveaxis(y, 0, axis)
    return _fit(y, axis, n_out)


def _scipy(arr: np.ndarray, axis: int, orig: Fraction, target: Fraction, setting: str,
           n_out: int) -> np.ndarray:
    from scipy.signal import resample_poly

    ratio = target / orig
    up, down = ratio.numerator, ratio.denominator
    if max(up, down) > MAX_POLYPHASE_FACTOR:
        raise ValueError(f"the rate ratio {float(orig):g} -> {float(target):g} reduces to "
                         f"{up}/{down}, too fine-grained for the polyphase backend (factor "
                         f"limit {MAX_POLYPHASE_FACTOR}); use backend='soxr'")
    if setting == "default":
        window: Any = ("kaiser", 5.0)
    else:  # a fresh copy: older SciPy scales the given filter in place
        window = _poly_filter(up, down, float(setting)).astype(arr.dtype)
    y = resample_poly(arr, up, down, axis=axis, window=window)
    return _fit(y, axis, n_out)


@functools.lru_cache(maxsize=16)
def _poly_filter(up: int, down: int, attenuation_db: float) -> np.ndarray:
    """A low-pass FIR for resample_poly: flat to PASS_EDGE x the lower Nyquist, down by
    `attenuation_db` from that Nyquist on (a Kaiser design, scipy.signal.kaiserord)."""
    from scipy.signal import firwin, kaiserord

    rate = max(up, down)
    numtaps, beta = kaiserord(attenuation_db, (1 - PASS_EDGE) / rate)
    numtaps |= 1  # odd: a symmetric filter with an integer delay
    h = firwin(numtaps, (1 + PASS_EDGE) / 2 / rate, window=("kaiser", beta))
    h.setflags(write=False)
    return h


def _resampy(arr: np.ndarray, axis: int, orig: Fraction, target: Fraction, setting: str,
             n_out: int) -> np.ndarray:
    import resampy

    # resampy floors the output length; zero padding gives it the last partial sample.
    arr = _pad(arr, axis, math.ceil(orig / target) + 1)
    y = resampy.resample(arr, float(orig), float(target), axis=axis, filter=setting)
    return _fit(y, axis, n_out)


_RUN: dict[str, Callable[..., np.ndarray]] = {"soxr": _soxr, "scipy": _scipy,
                                              "resampy": _resampy}


def resample(x: Any, orig_sr: float, target_sr: float, *, axis: int = -1,
             backend: str = "auto", quality: str = "hq") -> np.ndarray:
    """Resample `x` from `orig_sr` to `target_sr` along `axis` with a band-limited filter.

    Returns an array of x's dtype (float32 or float64) with exactly
    ``ceil(n * target_sr / orig_sr)`` samples along `axis` (n = x.shape[axis]), the same for
    every backend. `backend` is "auto" (soxr, else scipy, else resampy; a backend-specific
    quality name such as "kaiser_best" picks its backend), "soxr", "scipy" or "resampy".
    `quality` is "hq" (every backend), soxr's "vhq", "mq", "lq", "qq", resampy's
    "kaiser_best", "kaiser_fast" (and "lq"), scipy's "vhq", "mq". Equal rates return a copy.

    Raises ValueError for an unknown backend or quality, a non-positive or non-finite rate,
    a dtype other than float32/float64, an empty array, or NaN/inf samples; ImportError when
    the named backend is not installed; RuntimeError when the backend itself fails.
    """
    name, setting = _choose(backend, quality)
    orig = _rate(orig_sr, "orig_sr")
    target = _rate(target_sr, "target_sr")
    arr, ax = _check_array(x, axis)
    n_out = output_length(arr.shape[ax], orig, target)
    if orig == target:
        return arr.copy()
    try:
        y = _RUN[name](arr, ax, orig, target, setting, n_out)
    except (ValueError, ImportError):
        raise
    except Exception as exc:
        raise RuntimeError(f"resampling {float(orig):g} -> {float(target):g} Hz with {name} "
                           f"failed: {type(exc).__name__}: {exc}") from exc
    if y.dtype != arr.dtype:
        y = y.astype(arr.dtype)
    return y


# --- the drop-in for scipy.signal.resample ----------------------------------------------------

def _original_scipy_resample() -> Callable[..., Any]:
    import scipy.signal

    fn = scipy.signal.resample
    while getattr(fn, "__tts_doctor_shim__", None) and hasattr(fn, "__wrapped__"):
        fn = fn.__wrapped__
    return fn


def _needs_fft_semantics(x: Any, num: Any, axis: int, window: Any, domain: str) -> bool:
    """Whether the call depends on what only the FFT method does (see the module docstring)."""
    if window is not None or domain != "time":
        return True
    if not isinstance(x, (np.ndarray, list, tuple, numbers.Number)):
        return True  # array-API arrays (torch, cupy): SciPy keeps their type
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf" or arr.dtype == np.float16 or arr.ndim == 0:
        return True
    if not -arr.ndim <= axis < arr.ndim:
        return True  # let SciPy raise its own error
    if isinstance(num, bool) or not isinstance(num, numbers.Integral):
        return True
    if arr.shape[axis] < 2 or int(num) < 1 or arr.size == 0:
        return True
    return arr.dtype.kind == "f" and not bool(np.isfinite(arr).all())


def signal_resample(x: Any, num: int, t: Any = None, axis: int = 0, window: Any = None,
                    domain: str = "time") -> Any:
    """`scipy.signal.resample` with a band-limited resampler: same signature, same returns.

    Resamples `x` to `num` samples along `axis` (rates n and num, so the output has exactly
    `num` samples) with `resample(..., backend="auto")`. Integer input is returned as
    float64, float32 as float32, as SciPy does. With `t`, returns `(y, new_t)` where
    ``new_t = t[0] + (t[1] - t[0]) * n / num * arange(num)``. Calls the original SciPy
    function when FFT semantics matter: `window`, `domain='freq'`, complex, float16 or
    non-finite input, non-NumPy arrays, fewer than 2 samples, `num < 1`.

    The band-limited result differs from the FFT one near the ends: the FFT method treats the
    signal as periodic (the end wraps into the start), a band-limited resampler as silence
    outside it. In the interior, both agree to the filter's accuracy.
    """
    if _needs_fft_semantics(x, num, axis, window, domain):
        return _original_scipy_resample()(x, num, t=t, axis=axis, window=window,
                                          domain=domain)
    arr = np.asarray(x)
    if arr.dtype.kind in "biu":
        arr = arr.astype(np.float64)
    n = arr.shape[axis]
    y = resample(arr, n, int(num), axis=axis)
    if t is None:
        return y
    return y, t[0] + (t[1] - t[0]) * (n / int(num)) * np.arange(int(num))


signal_resample.__tts_doctor_shim__ = SHIM_NAME  # type: ignore[attr-defined]


def patch(signal_module: Any) -> list[str]:
    """Install `signal_resample` as `scipy.signal.resample` (the original stays reachable as
    `scipy.signal.resample.__wrapped__`). Returns the names patched ([] if already done)."""
    current = getattr(signal_module, "resample", None)
    if current is None or getattr(current, "__tts_doctor_shim__", None):
        return []

    def resample(x: Any, num: int, t: Any = None, axis: int = 0, window: Any = None,
                 domain: str = "time") -> Any:
        return signal_resample(x, num, t=t, axis=axis, window=window, domain=domain)

    resample.__doc__ = (signal_resample.__doc__ or "") + (
        "\n    Installed by tts-doctor's `resample` shim; the original SciPy function is "
        "`scipy.signal.resample.__wrapped__`.\n")
    # pickle (by reference) finds the same behaviour at shims.resample.signal_resample
    resample.__module__ = __name__
    resample.__qualname__ = "signal_resample"
    resample.__wrapped__ = current  # type: ignore[attr-defined]
    resample.__tts_doctor_shim__ = SHIM_NAME  # type: ignore[attr-defined]
    signal_module.resample = resample
    return ["resample"]


def unpatch(signal_module: Any) -> list[str]:
    """Undo `patch`: put the original function back."""
    current = getattr(signal_module, "resample", None)
    if getattr(current, "__tts_doctor_shim__", None) != SHIM_NAME:
        return []
    signal_module.resample = current.__wrapped__  # type: ignore[union-attr]
    return ["resample"]
