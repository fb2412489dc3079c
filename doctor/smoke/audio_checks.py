"""Checks on the synthesized waveform, each a finding with a fix.

finite samples, not silent (RMS floor), clipping ratio, DC offset, duration plausible for
the text, sample rate as the recipe says. Thresholds come from the recipe's `[audio]` table
where it has them, else the defaults below:

- `min_rms` 0.001 (-60 dBFS): fp16 silence (FAILURES.md C5) sits far below; speech far above.
- `max_clip_ratio` 0.001: at most 0.1 % of samples at full scale (|x| >= 0.999). A
  peak-normalized voice has a handful of samples there, a clipping one thousands.
- DC offset: |mean| at most 0.02 of full scale (warn above).
- `seconds_per_char` 0.07 (read English, ~14 characters a second; a CJK character, a
  syllable, counts 0.22 s: ~4.5 syllables a second): the duration must lie within 1/3 and
  3 times the expected length. A recipe's value applies to every character.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from tts_doctor.finding import Finding, Fix, Status

MIN_RMS = 0.001
MAX_CLIP_RATIO = 0.001
CLIP_LEVEL = 0.999
MAX_DC = 0.02
SECONDS_PER_CHAR = 0.07
SECONDS_PER_CJK = 0.22
DURATION_FACTOR = 3.0

CATEGORY = "output"


def analyze(samples: Any) -> dict[str, Any]:
    """Statistics of a mono float waveform: counts, RMS, peak, DC, clipping ratio."""
    import numpy as np

    x = np.asarray(samples, dtype=np.float64).reshape(-1)
    finite = np.isfinite(x)
    n = int(x.size)
    bad = int(n - finite.sum())
    xf = x[finite]
    if xf.size:
        rms = float(np.sqrt(np.mean(xf * xf)))
        peak = float(np.max(np.abs(xf)))
        dc = float(np.mean(xf))
        clipped = int(np.count_nonzero(np.abs(xf) >= CLIP_LEVEL))
    else:
        rms = peak = dc = 0.0
        clipped = 0
    return {"samples": n, "non_finite": bad, "nan": int(np.isnan(x).sum()), "rms": rms,
            "peak": peak, "dc": dc, "clipped": clipped,
            "clip_ratio": clipped / xf.size if xf.size else 0.0}


def _cjk(ch: str) -> bool:
    o = ord(ch)
    return (0x3040 <= o <= 0x30FF or 0x3400 <= o <= 0x4DBF or 0x4E00 <= o <= 0x9FFF
            or 0xAC00 <= o <= 0xD7AF or 0xF900 <= o <= 0xFAFF)


def expected_seconds(text: str, seconds_per_char: Optional[float] = None) -> float:
    """How long read speech of `text` lasts, roughly."""
    if seconds_per_char is not None:
        return len(text) * seconds_per_char
    cjk = sum(1 for c in text if _cjk(c))
    return cjk * SECONDS_PER_CJK + (len(text) - cjk) * SECONDS_PER_CHAR


def dbfs(x: float) -> Optional[float]:
    return round(20 * math.log10(x), 1) if x > 0 else None


def broken(stats: dict[str, Any], min_rms: float = MIN_RMS) -> Optional[str]:
    """Why a waveform is unusable (NaN/inf, silence, empty), or None: the ladder's test."""
    if stats["samples"] == 0:
        return "no samples"
    if stats["non_finite"]:
        return f"{stats['non_finite']} non-finite samples ({stats['nan']} NaN)"
    if stats["rms"] < min_rms:
        return f"silent (RMS {stats['rms']:.2e} < {min_rms:g})"
    return None


def _f(id_: str, status: Status, summary: str, fix: Optional[Fix] = None,
       **details: Any) -> Finding:
    return Finding(f"{CATEGORY}.{id_}", CATEGORY, status, summary, details, fix)


def check(samples: Any, sample_rate: int, text: str, *,
          audio_cfg: Optional[dict[str, Any]] = None, precision: str = "fp32",
          recipe_name: Optional[str] = None) -> list[Finding]:
    """The six audio findings for one synthesized waveform."""
    cfg = audio_cfg or {}
    stats = analyze(samples)
    n = stats["samples"]
    seconds = n / sample_rate if sample_rate else 0.0
    out: list[Finding] = []
    half = precision in ("fp16", "bf16")
    fp32_fix = Fix("Half precision gives NaN or silence on some models and cards "
                   "(see docs/troubleshooting.md, C5 fp16 silence / NaN): run in fp32",
                   commands=("tts-doctor smoke --precision fp32",))

    # finite
    if n == 0:
        out.append(_f("finite", Status.FAIL, "the engine returned no samples at all",
                      Fix("Check the text reaches the model (frontend output) and that the "
                          "engine returns its waveform, not an empty buffer"), samples=0))
    elif stats["non_finite"]:
        out.append(_f("finite", Status.FAIL,
                      f"{stats['non_finite']:,} of {n:,} samples are NaN or infinite",
                      fp32_fix if half else Fix(
                          "A NaN in the model's output: check the checkpoint loads fully "
                          "(no missing keys) and the input features are in range; run in "
                          "fp32 if another precision was used",
                          commands=("tts-doctor smoke --precision fp32",)),
                      non_finite=stats["non_finite"], nan=stats["nan"], precision=precision))
    else:
        out.append(_f("finite", Status.OK, f"all {n:,} samples are finite", samples=n))

    # silence
    min_rms = float(cfg.get("min_rms", MIN_RMS))
    level = dbfs(stats["rms"])
    if n and stats["rms"] < min_rms:
        out.append(_f("silence", Status.FAIL,
                      f"the audio is silent: RMS {stats['rms']:.2e} "
                      f"({level if level is not None else '-inf'} dBFS) is below the floor "
                      f"{min_rms:g}",
                      fp32_fix if half else Fix(
                          "Silence without an error: a precision problem (run fp32), a vocoder "
                          "fed features on the wrong scale, or weights that did not load",
                          commands=("tts-doctor smoke --precision fp32",)),
                      rms=stats["rms"], rms_dbfs=level, floor=min_rms, precision=precision))
    elif n:
        out.append(_f("silence", Status.OK, f"RMS {stats['rms']:.3f} ({level} dBFS), "
                      f"peak {stats['peak']:.3f}", rms=stats["rms"], rms_dbfs=level,
                      peak=stats["peak"], floor=min_rms))

    # clipping
    max_clip = float(cfg.get("max_clip_ratio", MAX_CLIP_RATIO))
    ratio = stats["clip_ratio"]
    if n and ratio > max_clip:
        out.append(_f("clipping", Status.FAIL,
                      f"{ratio:.2%} of samples are at full scale (limit {max_clip:.2%})",
                      Fix("Lower the output gain (or the model's volume/energy scale) before "
                          "converting to 16-bit; normalize the peak to -1 dBFS"),
                      clipped=stats["clipped"], ratio=ratio, limit=max_clip))
    elif n:
        out.append(_f("clipping", Status.OK, f"{stats['clipped']} samples at full scale "
                      f"({ratio:.3%}, limit {max_clip:.2%})", clipped=stats["clipped"],
                      ratio=ratio, limit=max_clip))

    # DC offset
    dc = stats["dc"]
    if n and abs(dc) > MAX_DC:
        out.append(_f("dc-offset", Status.WARN,
                      f"DC offset {dc:+.3f} of full scale (limit ±{MAX_DC})",
                      Fix("Remove the offset (subtract the mean, or a 20 Hz high-pass) and "
                          "check the vocoder's output layer"), dc=dc, limit=MAX_DC))
    elif n:
        out.append(_f("dc-offset", Status.OK, f"DC offset {dc:+.4f}", dc=dc, limit=MAX_DC))

    # duration
    spc = cfg.get("seconds_per_char")
    chars = len(text)
    expected = expected_seconds(text, float(spc) if spc is not None else None)
    lo, hi = expected / DURATION_FACTOR, expected * DURATION_FACTOR
    detail = dict(seconds=round(seconds, 3), chars=chars, expected_s=round(expected, 3),
                  plausible_s=[round(lo, 3), round(hi, 3)], seconds_per_char=spc)
    if n and not (lo <= seconds <= hi):
        what = "short" if seconds < lo else "long"
        out.append(_f("duration", Status.FAIL,
                      f"{seconds:.2f} s of audio for {chars} characters is implausibly {what} "
                      f"(expected about {expected:.1f} s, {lo:.1f}-{hi:.1f} s)",
                      Fix("Check the duration predictor's scale (length_scale / speed), that "
                          "the whole text reached the model, and the sample rate; set "
                          "audio.seconds_per_char in the recipe if this voice is unusually "
                          "fast or slow"), **detail))
    elif n:
        out.append(_f("duration", Status.OK, f"{seconds:.2f} s for {chars} characters "
                      f"(expected {lo:.1f}-{hi:.1f} s)", **detail))

    # sample rate
    expected_sr = cfg.get("sample_rate")
    if expected_sr is None:
        out.append(_f("sample-rate", Status.SKIP,
                      f"{sample_rate} Hz (no recipe sample rate to compare with)",
                      sample_rate=sample_rate))
    elif int(expected_sr) != int(sample_rate):
        where = f"recipe {recipe_name}" if recipe_name else "the recipe"
        out.append(_f("sample-rate", Status.FAIL,
                      f"the model produces {sample_rate} Hz but {where} says {expected_sr} Hz",
                      Fix(f"Resample from {sample_rate} to {expected_sr} Hz before playback "
                          "(shims.resample.resample(x, orig_sr, target_sr)), or correct "
                          "audio.sample_rate in the recipe: audio played at the wrong rate "
                          "sounds fast or slow and pitched"),
                      sample_rate=sample_rate, expected=int(expected_sr)))
    else:
        out.append(_f("sample-rate", Status.OK, f"{sample_rate} Hz as the recipe says",
                      sample_rate=sample_rate))
    return out
