"""Does the model fit a memory budget, and up to which text length?

`--vram-budget 8GiB` synthesizes texts of several lengths (whole, no text chunking: chunking
caps memory and would hide the growth), measures the peak of each, fits
peak = a + b * characters by least squares and answers: does the smoke text fit, with what
headroom, and what is the longest text (one chunk) that fits. Memory grows with mel frames,
which grow with the text (../shared/REFERENCE.md "Long text").

What is measured:

- GPU (`--vram-budget`): the peak the device would see, estimated as torch's peak reserved
  memory plus what NVML shows beyond torch's reserved memory before the runs (the CUDA
  context, library workspaces, other processes). Engines that do not allocate through torch
  (ONNX Runtime) are measured by NVML's device-used peak.
- CPU (`--ram-budget`): the process's peak RSS (VmHWM, reset before each run).

A length that runs out of memory is recorded as such and bounds the answer from above.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from tts_doctor.smoke import ladder, memory
from tts_doctor.smoke import text as textmod
from tts_doctor.smoke.engine import Engine

DEFAULT_LENGTHS = (50, 100, 200, 400)


@dataclass
class Point:
    chars: int
    peak: Optional[int]
    oom: bool = False
    seconds: Optional[float] = None
    wall_s: Optional[float] = None

    def to_dict(self) -> dict[str, Any]:
        return {"chars": self.chars, "peak": self.peak, "oom": self.oom,
                "audio_s": None if self.seconds is None else round(self.seconds, 3),
                "wall_s": None if self.wall_s is None else round(self.wall_s, 4)}


def parse_lengths(text: str) -> tuple[int, ...]:
    try:
        values = tuple(sorted({int(v) for v in text.split(",") if v.strip()}))
    except ValueError:
        raise ValueError(f"{text!r} is not a comma-separated list of character counts") \
            from None
    if len(values) < 2 or values[0] < 1 or values[-1] > textmod.MAX_TEXT_CHARS:
        raise ValueError(f"{text!r}: give at least two distinct lengths between 1 and "
                         f"{textmod.MAX_TEXT_CHARS}")
    return values


def measure(engine: Engine, base_text: str, plan: ladder.Plan, profiler: Any, kind: str,
            lengths: tuple[int, ...],
            on_length: Optional[Callable[[int, int], None]] = None) -> dict[str, Any]:
    """Peak memory at each length; kind is 'vram' or 'ram'."""
    whole = ladder.Plan(plan.device, plan.precision, None, plan.vocoder_chunk)
    memory.free_cache(plan.device)
    base = profiler.current()
    overhead = None
    if kind == "vram" and base.get("nvml_used") is not None \
            and base.get("torch_reserved") is not None:
        overhead = max(0, base["nvml_used"] - base["torch_reserved"])
    points: list[Point] = []
    for i, n in enumerate(lengths):
        if on_length:
            on_length(i + 1, len(lengths))
        text = textmod.lengthen(base_text, n)
        profiler.event(f"budget: {len(text)} chars")
        memory.free_cache(plan.device)
        with profiler.window() as w:
            try:
                with profiler.synthesis() as timing:
                    samples, rate, _ = ladder.synthesize_plan(engine, text, whole, profiler)
                seconds = len(samples) / rate
                del samples
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                if not ladder.is_oom(exc):
                    raise
                exc.__traceback__ = None
                del exc
                points.append(Point(len(text), None, oom=True))
                memory.free_cache(plan.device)
                break  # longer texts cannot fit either
        points.append(Point(len(text), _peak(w.peaks, kind, overhead), seconds=seconds,
                            wall_s=timing["wall_s"]))
    memory.free_cache(plan.device)
    return {"kind": kind, "overhead": overhead, "points": points,
            "basis": _basis(kind, engine, overhead)}


def _peak(peaks: dict[str, Optional[int]], kind: str, overhead: Optional[int]) -> Optional[int]:
    if kind == "ram":
        return peaks.get("rss_peak")
    reserved = peaks.get("torch_reserved_peak")
    if reserved is not None:
        return reserved + (overhead or 0)
    return peaks.get("nvml_used_peak")


def _basis(kind: str, engine: Engine, overhead: Optional[int]) -> str:
    if kind == "ram":
        return "process peak RSS"
    if engine.uses_torch:
        return ("torch peak reserved + non-torch device memory from NVML" if overhead
                is not None else "torch peak reserved (no NVML: CUDA context not included)")
    return "NVML device-used peak"


def fit(points: list[Point]) -> Optional[dict[str, float]]:
    """Least-squares line peak = a + b * chars over the points that ran."""
    xs = [float(p.chars) for p in points if p.peak is not None]
    ys = [float(p.peak) for p in points if p.peak is not None]  # type: ignore[arg-type]
    if len(set(xs)) < 2:
        return None
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    b = sxy / sxx
    a = my - b * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - (a + b * x)) ** 2 for x, y in zip(xs, ys))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return {"intercept": a, "slope_per_char": b, "r2": r2}


def verdict(result: dict[str, Any], budget: int, text_len: int,
            measured_peak: Optional[int]) -> dict[str, Any]:
    """Fits or not, headroom, and the longest text that fits."""
    points: list[Point] = result["points"]
    line = fit(points)
    oom_at = next((p.chars for p in points if p.oom), None)
    predicted = None
    if line is not None:
        predicted = int(line["intercept"] + line["slope_per_char"] * text_len)
    need = predicted if predicted is not None else measured_peak
    if measured_peak is not None and need is not None:
        need = max(need, measured_peak) if predicted is None else need
    longest: Optional[int] = None
    growth = None
    if line is not None:
        growth = line["slope_per_char"]
        if growth > 0:
            longest = int((budget - line["intercept"]) / growth)
            longest = max(0, longest)
    if oom_at is not None:
        longest = min(longest, oom_at - 1) if longest is not None else oom_at - 1
    measured_max = max((p.chars for p in points if p.peak is not None), default=0)
    return {
        "budget": budget,
        "text_chars": text_len,
        "peak_at_text": need,
        "fits": need is not None and need <= budget and not (oom_at and oom_at <= text_len),
        "headroom": None if need is None else budget - need,
        "longest_chars": longest,
        "extrapolated": longest is not None and longest > 2 * measured_max,
        "fit": line,
        "oom_at_chars": oom_at,
        "growth_per_char": growth,
    }
