"""The out-of-memory ladder: on OOM, free the cache and retry with less memory, rung by rung.

The rungs, in order; each keeps what the rungs before it changed:

1. `as-configured`: the device, precision and `--max-chars` asked for.
2. `half-precision`: autocast to bf16 (CUDA cards that support it, and CPUs) or fp16 (other
   CUDA cards, MPS). Only with `--precision auto` and an engine that can; the output must
   be finite and above the silence floor, or the rung counts as failed (FAILURES.md C5) and
   the rungs below return to fp32.
3. `text-chunks-N`: the text split at sentence boundaries (then clauses, then words) into
   chunks of at most N characters, synthesized one by one and joined with a 10 ms
   crossfade; N = 200 or half the text, halved again (at most three rungs, N >= 20).
4. `vocoder-chunks`: the vocoder runs on 64-frame mel chunks with 8 frames of overlap,
   crossfaded (engines that expose their vocoder: the reference engine).
5. `cpu`: the model moves to the CPU in fp32 (when it was on a GPU).

Out of memory means `torch.OutOfMemoryError` (`torch.cuda.OutOfMemoryError` is the same
class), MPS's `RuntimeError: MPS backend out of memory`, and ONNX Runtime's "Failed to
allocate memory". Any other exception stops the ladder (less memory does not fix a bug),
except at the ladder's own half-precision rung, where an error means half precision is not
supported here (a bf16 LSTM on a CPU without bf16 kernels): that rung fails and the ladder
goes on in fp32.
"""

from __future__ import annotations

import dataclasses
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from tts_doctor.smoke import audio_checks, memory, wav
from tts_doctor.smoke import text as textmod
from tts_doctor.smoke.engine import Engine, SynthesisContractError

VOCODER_CHUNK = (64, 8)  # frames, overlap frames
_OOM_MESSAGES = ("MPS backend out of memory", "CUDA out of memory",
                 "Failed to allocate memory")


def is_oom(exc: BaseException) -> bool:
    """True for the out-of-memory errors of CUDA, MPS and ONNX Runtime."""
    torch = sys.modules.get("torch")
    oom_cls = getattr(torch, "OutOfMemoryError", None) if torch is not None else None
    if oom_cls is not None and isinstance(exc, oom_cls):
        return True
    cuda_oom = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
    if cuda_oom is not None and isinstance(exc, cuda_oom):
        return True
    msg = str(exc)
    return isinstance(exc, (RuntimeError, MemoryError)) and any(m in msg for m in _OOM_MESSAGES)


def half_precision(device: str) -> str:
    """bf16 where it is native (Ampere+ CUDA, CPUs), else fp16."""
    kind = device.split(":", 1)[0]
    if kind == "cuda":
        torch = sys.modules.get("torch")
        try:
            return "bf16" if torch is not None and torch.cuda.is_bf16_supported() else "fp16"
        except Exception:
            return "fp16"
    return "fp16" if kind == "mps" else "bf16"


@dataclass(frozen=True)
class Plan:
    """How one synthesis runs."""

    device: str
    precision: str
    max_chars: Optional[int] = None
    vocoder_chunk: Optional[tuple[int, int]] = None

    def describe(self) -> str:
        parts = [self.device, self.precision,
                 f"chunks of <= {self.max_chars} chars" if self.max_chars else "whole text"]
        if self.vocoder_chunk:
            parts.append(f"vocoder in {self.vocoder_chunk[0]}-frame chunks")
        return ", ".join(parts)

    def flags(self) -> str:
        """The smoke options that reproduce this plan."""
        out = [f"--device {self.device}", f"--precision {self.precision}"]
        if self.max_chars:
            out.append(f"--max-chars {self.max_chars}")
        return " ".join(out)

    def to_dict(self) -> dict[str, Any]:
        return {"device": self.device, "precision": self.precision,
                "max_chars": self.max_chars,
                "vocoder_chunk": list(self.vocoder_chunk) if self.vocoder_chunk else None}


@dataclass
class Rung:
    name: str
    plan: Plan
    outcome: str = "pending"  # ok | oom | broken-audio | error
    detail: str = ""
    wall_s: float = 0.0
    first_audio_s: Optional[float] = None
    peaks: dict[str, Optional[int]] = field(default_factory=dict)
    num_alloc_retries: int = 0
    chunks: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"rung": self.name, "plan": self.plan.to_dict(), "outcome": self.outcome,
                "detail": self.detail, "wall_s": round(self.wall_s, 4),
                "first_audio_s": (round(self.first_audio_s, 4)
                                  if self.first_audio_s is not None else None),
                "chunks": self.chunks, "peaks": self.peaks,
                "num_alloc_retries": self.num_alloc_retries}


@dataclass
class Outcome:
    rungs: list[Rung]
    worked: Optional[int] = None  # index into rungs
    samples: Any = None
    sample_rate: int = 0
    error: Optional[dict[str, Any]] = None  # a non-OOM failure: type, message, traceback
    enabled: bool = True

    @property
    def plan(self) -> Optional[Plan]:
        return self.rungs[self.worked].plan if self.worked is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "rungs": [r.to_dict() for r in self.rungs],
                "worked": self.rungs[self.worked].name if self.worked is not None else None}


def text_chunk_sizes(text_len: int, current: Optional[int]) -> list[int]:
    cap = min(current or text_len, text_len)
    m = 200 if cap > 200 else cap // 2
    sizes: list[int] = []
    while m >= 20 and len(sizes) < 3:
        sizes.append(m)
        m //= 2
    return sizes


def synthesize_plan(engine: Engine, text: str, plan: Plan, profiler: Any) -> tuple[Any, int, int]:
    """Run one synthesis under a plan: (mono float32 samples, sample rate, chunks)."""
    if plan.device != engine.device or plan.precision != engine.precision:
        profiler.set_device(plan.device)
        engine.load(plan.device, plan.precision)
    engine.set_vocoder_chunking(plan.vocoder_chunk)
    chunks = textmod.chunk(text, plan.max_chars)
    pieces = []
    rate: Optional[int] = None
    for i, piece in enumerate(chunks):
        result = engine.synthesize(piece)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise SynthesisContractError(
                f"synthesize() returned {type(result).__name__}; expected (samples, "
                "sample_rate)")
        samples, sr = result
        if isinstance(sr, bool) or not isinstance(sr, (int, float)) or int(sr) <= 0 \
                or int(sr) != sr:
            raise SynthesisContractError(f"sample rate {sr!r} is not a positive integer")
        if rate is not None and int(sr) != rate:
            raise SynthesisContractError(f"chunks came back at {rate} and {int(sr)} Hz")
        rate = int(sr)
        pieces.append(wav.to_mono_float(samples))
        if i == 0:
            profiler.mark_first_audio()
    assert rate is not None
    joined = wav.crossfade_concat(pieces, int(wav.TEXT_CROSSFADE_S * rate)) \
        if len(pieces) > 1 else pieces[0]
    return joined, rate, len(chunks)


def _error_info(exc: BaseException) -> dict[str, Any]:
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    lines = "".join(tb).strip().splitlines()
    return {"type": type(exc).__name__, "message": str(exc).strip()[:1000],
            "traceback": "\n".join(lines[-14:])}


def run(engine: Engine, text: str, start: Plan, profiler: Any, *, enabled: bool = True,
        allow_precision: bool = True, min_rms: float = audio_checks.MIN_RMS,
        on_rung: Optional[Callable[[Rung, int], None]] = None) -> Outcome:
    """Try `start`, then the rungs below it until one works (or none is left)."""
    queue: list[tuple[str, dict[str, Any]]] = []
    half: Optional[str] = half_precision(start.device)
    if half not in engine.precisions:
        half = next((p for p in ("fp16", "bf16") if p in engine.precisions), None)
    if allow_precision and start.precision == "fp32" and half is not None:
        queue.append(("half-precision", {"precision": half}))
    queue += [(f"text-chunks-{m}", {"max_chars": m})
              for m in text_chunk_sizes(len(text), start.max_chars)]
    if engine.vocoder_chunks:
        queue.append(("vocoder-chunks", {"vocoder_chunk": VOCODER_CHUNK}))
    if engine.can_use_cpu and start.device != "cpu":
        queue.append(("cpu", {"device": "cpu", "precision": "fp32"}))

    out = Outcome([], enabled=enabled)
    name, plan = "as-configured", start
    half_broken = False
    tried: set[Plan] = set()
    while True:
        rung = Rung(name, plan)
        out.rungs.append(rung)
        if on_rung:
            on_rung(rung, len(out.rungs))
        profiler.event(f"rung {len(out.rungs)}: {name}")
        tried.add(plan)
        t0 = time.perf_counter()
        samples: Any = None
        with profiler.window() as w:
            try:
                with profiler.synthesis() as timing:
                    samples, rate, n_chunks = synthesize_plan(engine, text, plan, profiler)
                rung.wall_s = timing["wall_s"]
                rung.first_audio_s = timing["first_audio_s"]
                rung.chunks = n_chunks
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # every failure is a verdict here
                rung.wall_s = time.perf_counter() - t0
                if is_oom(exc):
                    rung.outcome = "oom"
                    rung.detail = (str(exc).strip().splitlines()
                                   or [type(exc).__name__])[0][:300]
                else:
                    rung.outcome = "error"
                    rung.detail = f"{type(exc).__name__}: {str(exc).strip()[:300]}"
                    if len(out.rungs) > 1 and plan.precision != start.precision:
                        half_broken = True  # the ladder's own half-precision rung: unsupported
                    else:
                        out.error = _error_info(exc)
                exc.__traceback__ = None
                del exc
        rung.peaks = dict(w.peaks)
        rung.num_alloc_retries = w.num_alloc_retries
        if rung.outcome == "pending":
            why = audio_checks.broken(audio_checks.analyze(samples), min_rms) \
                if plan.precision in ("fp16", "bf16") else None
            if why:
                rung.outcome, rung.detail = "broken-audio", f"{plan.precision}: {why}"
                half_broken = True
            else:
                rung.outcome = "ok"
                out.worked = len(out.rungs) - 1
                out.samples, out.sample_rate = samples, rate
                return out
        samples = None
        memory.free_cache(engine.device)
        if out.error is not None or not enabled:
            return out
        if half_broken and start.precision in ("fp16", "bf16") \
                and not any(n == "full-precision" for n, _ in queue) \
                and all(r.name != "full-precision" for r in out.rungs):
            queue.insert(0, ("full-precision", {"precision": "fp32"}))
        while queue:
            name, change = queue.pop(0)
            nxt = dataclasses.replace(plan, **change)
            if half_broken and nxt.precision in ("fp16", "bf16"):
                nxt = dataclasses.replace(nxt, precision="fp32")
            if nxt not in tried:
                plan = nxt
                break
        else:
            return out
