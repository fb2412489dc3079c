"""Repeat the synthesis and say whether memory returns to its baseline (the leak check).

Users see GPU memory creep from one request to the next (index-tts#630: 12 -> 16 GB; memory
held after a failed long text, Bert-VITS2 package #9). `--repeat N` runs the synthesis N more
times after the checked one; after each run garbage is collected, the CUDA cache emptied and
freed heap returned to the OS (malloc_trim), then memory is read. The first repeat is the
baseline (first calls fill caches: oneDNN primitives, espeak, cuDNN autotuning).

What counts as a leak:

- CUDA: torch *allocated* memory (live tensors) ends more than 1 MiB above the baseline and
  never went down between runs. Reserved memory is the cache and is not a leak.
- Every device, when torch is loaded: tensors reachable by the garbage collector (count and
  bytes, parameters excluded) grow by more than 1 MiB: exact, whatever the allocator does.
- CPU: RSS grows by more than 4 MiB a run on average and by more than 1 MiB in every run
  (RSS is noisy: a single step or a plateau is allocator behaviour, a staircase is a leak).
  This catches what the tensor walk cannot see: numpy arrays, native buffers.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Optional

from tts_doctor.smoke import ladder, memory
from tts_doctor.smoke.engine import Engine

MiB = 2 ** 20
ALLOC_TOLERANCE = 1 * MiB
RSS_PER_RUN = 4 * MiB
RSS_STEP = 1 * MiB


def repeat(engine: Engine, text: str, plan: ladder.Plan, profiler: Any, n: int,
           on_run: Optional[Callable[[int, int], None]] = None) -> dict[str, Any]:
    """Run the synthesis n times and read memory after each; returns rows and the verdict."""
    rows = []
    stats = memory.TorchStats(plan.device)
    track_tensors = engine.uses_torch or "torch" in sys.modules
    for i in range(n):
        if on_run:
            on_run(i + 1, n)
        profiler.event(f"repeat {i + 1}/{n}")
        with profiler.synthesis() as timing:
            samples, rate, _ = ladder.synthesize_plan(engine, text, plan, profiler)
        seconds = len(samples) / rate if rate else 0.0
        del samples
        memory.free_cache(plan.device)
        row: dict[str, Any] = {"run": i + 1, "wall_s": round(timing["wall_s"], 4),
                               "rtf": round(timing["wall_s"] / seconds, 4) if seconds else None,
                               "rss": memory.rss(), "torch_allocated": stats.allocated()}
        if track_tensors:
            row["tensors"], row["tensor_bytes"] = memory.live_tensors()
        rows.append(row)
    return {"runs": rows, **judge(rows, cuda=stats.cuda)}


def judge(rows: list[dict[str, Any]], cuda: bool) -> dict[str, Any]:
    """The verdict over rows[0] (baseline) .. rows[-1]."""
    if len(rows) < 2:
        return {"verdict": "not-enough-runs", "basis": None, "growth": {}}
    base, last = rows[0], rows[-1]
    intervals = len(rows) - 1
    growth: dict[str, Any] = {}
    reasons = []
    basis = []
    if cuda and base.get("torch_allocated") is not None:
        basis.append("torch allocated")
        vals = [r["torch_allocated"] for r in rows]
        g = vals[-1] - vals[0]
        growth["torch_allocated"] = g
        never_down = all(b >= a - 64 * 1024 for a, b in zip(vals, vals[1:]))
        if g > ALLOC_TOLERANCE and never_down:
            reasons.append(f"torch allocated memory grew {g / MiB:.1f} MiB over {intervals} "
                           "runs")
    if "tensor_bytes" in base:
        basis.append("live tensors")
        g = last["tensor_bytes"] - base["tensor_bytes"]
        growth["tensor_bytes"] = g
        growth["tensors"] = last["tensors"] - base["tensors"]
        if g > ALLOC_TOLERANCE:
            reasons.append(f"{growth['tensors']} more live tensors ({g / MiB:.1f} MiB) after "
                           f"{intervals} runs")
    if not cuda:
        basis.append("RSS")
        vals = [r["rss"] for r in rows]
        g = vals[-1] - vals[0]
        growth["rss"] = g
        steps = [b - a for a, b in zip(vals, vals[1:])]
        if g / intervals > RSS_PER_RUN and all(s > RSS_STEP for s in steps):
            reasons.append(f"RSS grew {g / MiB:.1f} MiB over {intervals} runs "
                           f"({g / intervals / MiB:.1f} MiB a run, every run)")
    return {"verdict": "leak" if reasons else "ok", "reasons": reasons,
            "basis": " + ".join(basis), "growth": growth, "intervals": intervals}
