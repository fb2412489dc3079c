"""shims.resample against the resamplers it replaces or wraps: scipy.signal.resample (FFT),
scipy.signal.resample_poly, resampy and soxr, on 10 s of float32 audio.

Targets (issue 4): the auto backend >= 5x faster than scipy.signal.resample on 48k->24k and
44.1k->16k, and within 1.5x of calling soxr directly.
"""

from __future__ import annotations

import numpy as np
from _harness import Row, Section, interleave


def _signal(n: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal(n).astype(np.float32) * 0.1


def _case(orig: int, target: int, repeats: int) -> list[Row]:
    import resampy
    import scipy.signal
    import soxr
    from tts_doctor.shims.resample import resample

    x = _signal(orig * 10)
    n_out = len(x) * target // orig
    from fractions import Fraction

    ratio = Fraction(target, orig)
    up, down = ratio.numerator, ratio.denominator
    candidates = {
        "scipy.signal.resample (FFT)": lambda: scipy.signal.resample(x, n_out),
        "scipy.signal.resample_poly": lambda: scipy.signal.resample_poly(x, up, down),
        "resampy kaiser_best": lambda: resampy.resample(x, orig, target, filter="kaiser_best"),
        "resampy kaiser_fast": lambda: resampy.resample(x, orig, target, filter="kaiser_fast"),
        "soxr.resample HQ": lambda: soxr.resample(x, orig, target, "HQ"),
        "shims auto (soxr HQ)": lambda: resample(x, orig, target),
        "shims scipy hq": lambda: resample(x, orig, target, backend="scipy"),
        "shims scipy mq": lambda: resample(x, orig, target, backend="scipy", quality="mq"),
    }
    return interleave(candidates, repeats, warmup=2)


def _ratios(rows: list[Row]) -> list[str]:
    by = {r.name: r.median for r in rows}
    auto = by["shims auto (soxr HQ)"]
    return [f"shims auto is {by['scipy.signal.resample (FFT)'] / auto:.1f}x faster than "
            f"scipy.signal.resample (target >= 5x) and takes {auto / by['soxr.resample HQ']:.2f}x "
            "the time of soxr directly (target <= 1.5x)."]


def _prime_case(repeats: int) -> list[Row]:
    import scipy.signal
    from tts_doctor.shims.resample import signal_resample

    n = 480_007  # prime: the FFT method's slow case (FAILURES.md S5, scipy#9273)
    x = _signal(n)
    return interleave({
        "scipy.signal.resample (FFT)": lambda: scipy.signal.resample(x, 240_000),
        "shims drop-in signal_resample": lambda: signal_resample(x, 240_000),
    }, repeats, warmup=1)


def run(repeats: int) -> list[Section]:
    command = f"python benchmarks/run.py --only resample --repeats {repeats}"
    sections = []
    for orig, target in ((48000, 24000), (44100, 16000)):
        rows = _case(orig, target, repeats)
        sections.append(Section(
            f"Resampling 10 s {orig / 1000:g}k -> {target / 1000:g}k (float32)",
            "One channel of 10 s of noise. The shims' auto backend is soxr HQ plus input "
            "checks (finite, non-empty) and the exact ceil(n * target / orig) length; "
            "`shims scipy hq` is the polyphase fallback with an 80 dB Kaiser design; "
            "resampy's first call (numba JIT) is outside the timing (warm-up).",
            command, rows, baseline="scipy.signal.resample (FFT)", notes=_ratios(rows)))
    sections.append(Section(
        "scipy.signal.resample on a prime length (480007 samples -> 240000)",
        "The `resample` shim installed as scipy.signal.resample: same signature and "
        "returns, band-limited resampling instead of one FFT of a prime length.",
        command, _prime_case(repeats), baseline="scipy.signal.resample (FFT)"))
    return sections
