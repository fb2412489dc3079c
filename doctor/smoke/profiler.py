"""The stage profiler: wall time and memory per stage, a sampled timeline, RTF and TTFA.

Engines mark their stages (`load`, `frontend`, `acoustic`, `vocoder`, `post`; end-to-end
models use `acoustic+vocoder`, opaque callables `model`) with `with profiler.stage(name):`.
At each stage start the torch peak counters (`reset_peak_memory_stats`) and the process's
peak RSS are reset; at its end the peaks are read, so every stage has its own peaks. On a
GPU the stage boundaries synchronize the device, or the times would be launch times.

A background thread samples RSS, NVML device-used memory and torch allocated memory at
`sample_hz` (20-50 Hz) into a timeline of bounded size: when it is full, every other point is
dropped and the sampling stride doubles, so a long run keeps its whole shape in constant
memory. Per-stage NVML peaks come from these samples plus a reading at both ends of the stage.

`NullProfiler` has the same interface and does nothing: the unprofiled baseline the
overhead benchmark compares against.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Optional

from tts_doctor.smoke import memory

STAGES = ("load", "frontend", "acoustic", "vocoder", "acoustic+vocoder", "model", "post")
_METRICS = ("torch_allocated_peak", "torch_reserved_peak", "nvml_used_peak", "rss_peak")


def _max(a: Optional[int], b: Optional[int]) -> Optional[int]:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


@dataclass
class StageRecord:
    """One stage's totals over every time it ran (chunks, sentences, repeats)."""

    name: str
    calls: int = 0
    wall_s: float = 0.0
    torch_allocated_peak: Optional[int] = None
    torch_reserved_peak: Optional[int] = None
    nvml_used_peak: Optional[int] = None
    rss_peak: Optional[int] = None
    rss_rise: Optional[int] = None
    torch_allocated_rise: Optional[int] = None
    num_alloc_retries: Optional[int] = None
    num_ooms: Optional[int] = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "calls": self.calls, "wall_s": round(self.wall_s, 4),
                **{m: getattr(self, m) for m in _METRICS},
                "rss_rise": self.rss_rise, "torch_allocated_rise": self.torch_allocated_rise,
                "num_alloc_retries": self.num_alloc_retries, "num_ooms": self.num_ooms}


class Timeline:
    """Columns of samples with a hard cap on points (decimated by 2 when full)."""

    def __init__(self, max_points: int = 2048):
        self.max_points = max(16, max_points)
        self.t: list[float] = []
        self.rss: list[int] = []
        self.nvml: list[Optional[int]] = []
        self.torch_allocated: list[Optional[int]] = []
        self.stride = 1
        self._tick = 0

    def add(self, t: float, rss: int, nvml: Optional[int], alloc: Optional[int]) -> None:
        self._tick += 1
        if self._tick % self.stride:
            return
        self.t.append(round(t, 4))
        self.rss.append(rss)
        self.nvml.append(nvml)
        self.torch_allocated.append(alloc)
        if len(self.t) >= self.max_points:
            for col in (self.t, self.rss, self.nvml, self.torch_allocated):
                del col[1::2]
            self.stride *= 2

    def to_dict(self) -> dict[str, Any]:
        return {"t": list(self.t), "rss": list(self.rss),
                "nvml_used": list(self.nvml) if any(v is not None for v in self.nvml) else None,
                "torch_allocated": (list(self.torch_allocated)
                                    if any(v is not None for v in self.torch_allocated)
                                    else None),
                "stride": self.stride}


@dataclass
class Window:
    """Peaks seen by every stage that ended while the window was open (a rung, a run)."""

    peaks: dict[str, Optional[int]] = field(default_factory=lambda: dict.fromkeys(_METRICS))
    num_alloc_retries: int = 0

    def update(self, rec: dict[str, Optional[int]]) -> None:
        for m in _METRICS:
            self.peaks[m] = _max(self.peaks[m], rec.get(m))


class Profiler:
    """Per-stage memory and time, a sampled timeline, synthesis timing."""

    enabled = True

    def __init__(self, device: str = "cpu", *, sample_hz: float = 25.0,
                 max_points: int = 2048, max_spans: int = 2000):
        self.sample_hz = min(max(sample_hz, 1.0), 200.0)
        self.timeline = Timeline(max_points)
        self.max_spans = max_spans
        self.spans: list[tuple[str, float, float]] = []
        self.spans_dropped = 0
        self.events: list[tuple[float, str]] = []
        self.records: dict[str, StageRecord] = {}
        self._peak_rss = memory.PeakRSS()
        self._lock = threading.Lock()
        self._active: Optional[str] = None
        self._stage_sampled: dict[str, Optional[int]] = {}
        self._windows: list[Window] = []
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._t0 = time.perf_counter()
        self._synth_start: Optional[float] = None
        self._first_audio: Optional[float] = None
        self.set_device(device)

    # --- device ---------------------------------------------------------------------------
    def set_device(self, device: str) -> None:
        """(Re)bind the readers to a device: the ladder's CPU rung moves the engine."""
        self.device = device
        self.torch_stats = memory.TorchStats(device)
        nvml = memory.NVML(device)
        with self._lock:
            self.nvml = nvml

    @property
    def rss_peak_exact(self) -> bool:
        return self._peak_rss.resettable

    # --- sampler --------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._t0 = time.perf_counter()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="tts-doctor-sampler",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._thread = None

    def _sample(self) -> None:
        now = time.perf_counter() - self._t0
        rss = memory.rss()
        with self._lock:
            nvml_reader = self.nvml
        nvml = nvml_reader.used()
        alloc = self.torch_stats.allocated() if self.torch_stats.cuda else None
        with self._lock:
            self.timeline.add(now, rss, nvml, alloc)
            if self._active is not None:
                s = self._stage_sampled
                s["rss_peak"] = _max(s.get("rss_peak"), rss)
                s["nvml_used_peak"] = _max(s.get("nvml_used_peak"), nvml)

    def _run(self) -> None:
        interval = 1.0 / self.sample_hz
        while not self._stop.wait(interval):
            try:
                self._sample()
            except Exception:  # a reader failing must never take the run down
                continue

    # --- stages ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time one stage and take its memory peaks; nested stages are timed only."""
        if self._active is not None:
            t0 = time.perf_counter()
            try:
                yield
            finally:
                rec = self.records.setdefault(name, StageRecord(name))
                rec.calls += 1
                rec.wall_s += time.perf_counter() - t0
            return
        memory.synchronize(self.device)
        self.torch_stats.reset_peak()
        self._peak_rss.reset()
        before = self.torch_stats.read()
        nvml0 = self.nvml.used()
        rss0 = memory.rss()
        before["rss"] = rss0
        with self._lock:
            self._active = name
            self._stage_sampled = {"nvml_used_peak": nvml0, "rss_peak": rss0}
        t0 = time.perf_counter()
        try:
            yield
        finally:
            try:
                memory.synchronize(self.device)
            except Exception:  # a device error is the stage's own exception's business
                pass
            t1 = time.perf_counter()
            self._finish(name, t0, t1, before)

    def _finish(self, name: str, t0: float, t1: float, before: dict[str, Any]) -> None:
        after = self.torch_stats.read()
        rss_now = memory.rss()
        nvml_now = self.nvml.used()
        with self._lock:
            sampled = self._stage_sampled
            self._active = None
        rss_peak = _max(sampled.get("rss_peak"), rss_now)
        if self._peak_rss.resettable:
            rss_peak = _max(rss_peak, self._peak_rss.read())
        got = {
            "torch_allocated_peak": after.get("allocated_peak"),
            "torch_reserved_peak": after.get("reserved_peak"),
            "nvml_used_peak": _max(sampled.get("nvml_used_peak"), nvml_now),
            "rss_peak": rss_peak,
        }
        if self.torch_stats.mps:  # no peak counters on MPS: the current values at the end
            got["torch_allocated_peak"] = after.get("allocated")
            got["torch_reserved_peak"] = after.get("reserved")
        rec = self.records.setdefault(name, StageRecord(name))
        rec.calls += 1
        rec.wall_s += t1 - t0
        for m in _METRICS:
            setattr(rec, m, _max(getattr(rec, m), got[m]))
        if rss_peak is not None:
            rec.rss_rise = _max(rec.rss_rise, rss_peak - before["rss"])
        if got["torch_allocated_peak"] is not None and before.get("allocated") is not None:
            rec.torch_allocated_rise = _max(rec.torch_allocated_rise,
                                            got["torch_allocated_peak"] - before["allocated"])
        retries = None
        if after.get("num_alloc_retries") is not None:
            retries = after["num_alloc_retries"] - (before.get("num_alloc_retries") or 0)
            rec.num_alloc_retries = (rec.num_alloc_retries or 0) + retries
            rec.num_ooms = (rec.num_ooms or 0) + (after.get("num_ooms", 0)
                                                  - (before.get("num_ooms") or 0))
        for w in self._windows:
            w.update(got)
            w.num_alloc_retries += retries or 0
        if len(self.spans) < self.max_spans:
            self.spans.append((name, round(t0 - self._t0, 4), round(t1 - self._t0, 4)))
        else:
            self.spans_dropped += 1

    @contextlib.contextmanager
    def window(self) -> Iterator[Window]:
        """Collect the peaks of the stages that run inside the block."""
        w = Window()
        self._windows.append(w)
        try:
            yield w
        finally:
            self._windows.remove(w)

    def event(self, label: str) -> None:
        """A labelled moment on the timeline (a ladder rung starting, a budget length)."""
        if len(self.events) < 500:
            self.events.append((round(time.perf_counter() - self._t0, 4), label))

    # --- synthesis timing -----------------------------------------------------------------
    @contextlib.contextmanager
    def synthesis(self) -> Iterator[dict[str, float]]:
        """Time one whole synthesis; yields a dict that gets wall_s and first_audio_s."""
        out: dict[str, float] = {}
        self._synth_start = time.perf_counter()
        self._first_audio = None
        try:
            yield out
        finally:
            end = time.perf_counter()
            out["wall_s"] = end - self._synth_start
            first = self._first_audio if self._first_audio is not None else end
            out["first_audio_s"] = first - self._synth_start
            self._synth_start = None

    def mark_first_audio(self) -> None:
        """The engine has its first audio samples (streaming engines: the first sentence)."""
        if self._synth_start is not None and self._first_audio is None:
            memory.synchronize(self.device)
            self._first_audio = time.perf_counter()

    # --- readings -------------------------------------------------------------------------
    def current(self) -> dict[str, Optional[int]]:
        """Memory right now: RSS, torch allocated/reserved, NVML device used."""
        stats = self.torch_stats.read()
        return {"rss": memory.rss(), "torch_allocated": stats.get("allocated"),
                "torch_reserved": stats.get("reserved"), "nvml_used": self.nvml.used()}

    def stages(self) -> list[dict[str, Any]]:
        order = {s: i for i, s in enumerate(STAGES)}
        recs = sorted(self.records.values(), key=lambda r: (order.get(r.name, 99), r.name))
        return [r.to_dict() for r in recs]

    def to_dict(self) -> dict[str, Any]:
        return {
            "sample_hz": self.sample_hz,
            "rss_peak_per_stage": "exact (VmHWM reset per stage)" if self.rss_peak_exact
            else "sampled",
            "timeline": {**self.timeline.to_dict(),
                         "spans": [list(s) for s in self.spans],
                         "spans_dropped": self.spans_dropped,
                         "events": [list(e) for e in self.events]},
        }


class _NullContext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


class NullProfiler:
    """The profiler's interface doing nothing: engines run exactly as unprofiled."""

    enabled = False
    _null = _NullContext()

    def __init__(self, device: str = "cpu", **_: Any):
        self.device = device

    def set_device(self, device: str) -> None:
        self.device = device

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def stage(self, name: str) -> _NullContext:
        return self._null

    def mark_first_audio(self) -> None:
        pass

    def event(self, label: str) -> None:
        pass
